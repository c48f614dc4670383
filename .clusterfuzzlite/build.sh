#!/bin/bash -eu
# Build every toolkit/fuzz/harnesses/*_fuzzer.py into $OUT with its seed corpus and dictionary.
# compile_python_fuzzer (OSS-Fuzz) freezes each harness with PyInstaller; the built-in targets
# are imported by name at run time, hence the hidden imports.
pip3 install .
pip3 install "atheris>=2.3"
for fuzzer in toolkit/fuzz/harnesses/*_fuzzer.py; do
  name=$(basename "$fuzzer" _fuzzer.py)
  compile_python_fuzzer "$fuzzer" \
    --hidden-import toolkit.fuzz.targets \
    --hidden-import toolkit.fuzz.world \
    --hidden-import toolkit.fuzz.sctp \
    --collect-submodules reference_server
  # The flags `rtcgate fuzz` runs the target with (max_len, exec-time-scaled scheduling).
  python3 -c "import sys; from toolkit.fuzz.campaign import options_file; print(options_file(sys.argv[1]), end='')" \
    "$name" > "$OUT/${name}_fuzzer.options"
  seeds=()
  for folder in "toolkit/corpora/$name" "toolkit/corpora/regressions/$name"; do
    if [ -d "$folder" ]; then seeds+=("$folder"); fi
  done
  if [ ${#seeds[@]} -gt 0 ]; then
    find "${seeds[@]}" -type f -print0 | xargs -0 zip -q -j "$OUT/${name}_fuzzer_seed_corpus.zip"
  fi
  if [ -f "toolkit/corpora/$name.dict" ]; then
    cp "toolkit/corpora/$name.dict" "$OUT/${name}_fuzzer.dict"
  fi
done
