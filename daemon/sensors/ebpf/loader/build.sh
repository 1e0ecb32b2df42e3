#!/usr/bin/env bash
# Builds redline's libbpf loader (the host-wide byte accounting) into OUT (default dist/loader):
# Debian's clang, libbpf-dev and bpftool, on x86_64 with kernel BTF. Without them it says why
# and exits 0: the eBPF sensor then counts the bytes in bpftrace, as before (slower).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-dist/loader}
skip() { echo "redline: the libbpf loader is not built ($1); bpftrace will count the weights' bytes" >&2; exit 0; }
guard=$(cd "$here/../../../guard" && pwd)
# the subject's seccomp entry (daemon/guard/enter): only a C compiler; without it exec starts
# the subject through sh, and the guard is detection only
mkdir -p "$out" && rm -f "$out/redline-enter" "$out/guard.bpf.o" "$out/redline-guard"
if [ "$(uname -m)" = x86_64 ] && command -v cc >/dev/null; then
  cc -O2 -Wall -o "$out/redline-enter" "$guard/enter/enter.c" || echo "redline: cc failed on enter.c; the subject starts without the seccomp guard" >&2
else
  echo "redline: the seccomp entry is not built (it needs cc on x86_64); the subject starts without it" >&2
fi
[ "$(uname -m)" = x86_64 ] || skip "it reads x86_64 registers; this is $(uname -m)"
command -v clang >/dev/null || skip "no clang (apt-get install clang)"
command -v bpftool >/dev/null || skip "no bpftool (apt-get install bpftool)"
[ -f /usr/include/bpf/libbpf.h ] || skip "no libbpf headers (apt-get install libbpf-dev)"
[ -r /sys/kernel/btf/vmlinux ] || skip "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
mkdir -p "$out" && rm -f "$out/bytes.bpf.o" "$out/redline-loader" || skip "cannot create $out"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$tmp/vmlinux.h" || skip "bpftool could not dump the kernel's BTF"
clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -I"$tmp" -I"$here" -c "$here/bytes.bpf.c" -o "$out/bytes.bpf.o" || skip "clang failed on bytes.bpf.c"
cc -O2 -Wall -I"$here" -o "$out/redline-loader" "$here/loader.c" -lbpf || skip "cc failed on loader.c"
# the BPF LSM guard (daemon/guard/kernel): whether the kernel lets it load is found at run time
clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -I"$tmp" -I"$guard/kernel" -c "$guard/kernel/guard.bpf.c" -o "$out/guard.bpf.o" \
  && cc -O2 -Wall -I"$guard/kernel" -I"$here" -o "$out/redline-guard" "$guard/kernel/guard.c" -lbpf \
  || echo "redline: the BPF LSM guard is not built; the guard is seccomp and detection" >&2
echo "redline: built the libbpf loader into $out" >&2
