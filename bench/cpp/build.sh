#!/usr/bin/env bash
# Build the C++ benchmark of the core (not part of the Python package) into build/bench/.
# Same flags as the module's default build; MLBS_NATIVE=ON builds it for this CPU instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/bench
arch=-march=x86-64-v2
[ "${MLBS_NATIVE:-OFF}" = ON ] && arch=-march=native
"${CXX:-g++}" -std=c++17 -O3 -ffp-contract=off -fno-math-errno "$arch" -Icpp bench/cpp/core_bench.cpp \
  -o build/bench/core_bench
echo build/bench/core_bench
