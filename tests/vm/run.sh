#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - dirtyd against the real Linux iommufd, in a qemu guest.
#
#   tests/vm/run.sh --manifest BUILD/tests/vm/guest.manifest [options]
#
# One command: builds (or finds in the cache) the guest kernel of one
# version of the pinned matrix kernel/vm/kernels (build-kernel.sh:
# linux-source-6.12 at that exact version with IOMMUFD and IOMMUFD_TEST,
# stock or with the io_uring command series of kernel/patches/), packs the
# programs the manifest names into an initramfs (mkinitramfs.sh), boots it
# with qemu-system-x86_64, and reads the results /init writes to the second
# serial port.  The kernel command line tells the guest programs which
# harvest engine mode the probe must find (DIRTYD_VM_ENGINE=workers on the
# stock kernel, uring_cmd on the patched one; they fail if it finds the
# other); on the patched kernel the series' own kselftest
# (iommufd_uring_selftest, built beside the bzImage) runs as one more guest
# test.  The kernel command line also names the release (DIRTYD_VM_KERNEL):
# the guest tests expect of it what kernel/sim/kernel.h says that release
# does.  Then, for every scenario, it runs the same file on the sim
# emulating that release (scenario_runner --kernel) and compares the two
# transcripts byte for byte: the kernel is the reference; and it compares
# the kernel's transcript with the one recorded on that release,
# tests/scenario/recorded/<release>/NAME.kernel.  Exits 0 only if every
# guest test passed, every scenario matched, and the kernel printed no
# BUG, WARNING or panic.
#
# Options:
#   --manifest FILE   what goes into the guest (CMake writes it; see
#                     mkinitramfs.sh for the format)
#   --version V       the linux-source-6.12 package version to boot, one of
#                     kernel/vm/kernels (default: the newest there)
#   --kernel VARIANT  stock (the default) or uring (build-kernel.sh VARIANT)
#   --out DIR         keep the console log, the results, the transcripts
#                     and the initramfs there (default: a temporary
#                     directory, removed on success)
#   --timeout S       the whole guest run, boot included (default 900)
#   --record          write each kernel transcript as
#                     tests/scenario/recorded/<release>/NAME.kernel (what
#                     the host-only test tests/scenario/check-sim.sh
#                     compares the sim emulating <release> with)
# Environment: DIRTYD_VM_ACCEL = auto (the default: KVM if a probe boot
# under KVM works, else TCG), kvm or tcg.  DIRTYD_VM_MEM (1G),
# DIRTYD_VM_CPUS (2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
manifest=
out=
timeout_s=900
record=
variant=stock
version=

die() {
	echo "run.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--manifest) manifest=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--record) record=1; shift ;;
	--kernel) variant=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	-h|--help) sed -n '3,48p' "$0"; exit 0 ;;
	*) die "unknown argument $1 (--help)" ;;
	esac
done
[ -n "$manifest" ] || die "--manifest is required (build first: it is" \
			  "BUILD/tests/vm/guest.manifest)"
[ -r "$manifest" ] || die "$manifest is missing"
case $variant in
stock) engine=workers ;;
uring) engine=uring_cmd ;;
*) die "--kernel $variant: stock or uring" ;;
esac
command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 is missing (scripts/deps.sh installs it)"
top=$(cd "$here/../.." && pwd)
# shellcheck disable=SC2034 # read by linux-source.sh
me=run.sh
# shellcheck disable=SC2034
need="the VM test boots a kernel built from it"
# shellcheck source=scripts/linux-source.sh
. "$top/scripts/linux-source.sh"	# sets version (default newest), release
matrix_versions | grep -qxF "$version" ||
	die "$version is not in the kernel matrix $matrix"
recorded=$top/tests/scenario/recorded/$release

keep=
if [ -n "$out" ]; then
	mkdir -p "$out"
	keep=1
else
	out=$(mktemp -d "${TMPDIR:-/tmp}/dirtyd-vm.XXXXXX")
fi
out=$(cd "$out" && pwd)
console=$out/console.log
results=$out/results.log
rm -f "$console" "$results" "$out"/*.kernel "$out"/*.sim "$out"/*.diff

t0=$(date +%s)
kernel=$("$here/build-kernel.sh" "$version" "$variant") ||
	die "the $variant guest kernel of $version did not build"
t1=$(date +%s)
# The mock IOMMU's test interface is built from the newest kernel's
# iommufd_test.h (kernel/vm/iommufd-test-header.sh); its numbers follow the
# kernel version, so this kernel's must be the same file.
ours=$(sh "$top/kernel/vm/iommufd-test-header.sh") ||
	die "cannot get the build's iommufd_test.h"
theirs=$(DIRTYD_KERNEL_VERSION=$version \
	 sh "$top/kernel/vm/iommufd-test-header.sh") ||
	die "cannot get the iommufd_test.h of $version"
if ! cmp -s "$ours/iommufd_test.h.orig" "$theirs/iommufd_test.h.orig"; then
	diff -u "$ours/iommufd_test.h.orig" "$theirs/iommufd_test.h.orig" |
		head -40 >&2 || true
	die "the mock IOMMU test interface (iommufd_test.h) of $version" \
	    "differs from the one dirtyd is built with ($ours): the mock" \
	    "provider would send the wrong commands; it needs one build per" \
	    "kernel before this version can join the matrix"
fi
# The manifest the guest gets: the given one, and on the patched kernel
# the series' kselftest of the uring command path.
guest_manifest=$out/guest.manifest
cp "$manifest" "$guest_manifest"
if [ "$variant" = uring ]; then
	selftest=$(dirname "$kernel")/iommufd_uring_selftest
	[ -x "$selftest" ] || die "$selftest is missing: build-kernel.sh uring" \
				  "must leave the kselftest beside the bzImage"
	printf 'bin %s\ntest kselftest 300 /bin/%s\n' "$selftest" \
	       "$(basename "$selftest")" >>"$guest_manifest"
fi
"$here/mkinitramfs.sh" "$guest_manifest" "$out/initramfs.cpio"
echo "run.sh: Linux $release ($version), $variant kernel $kernel ($((t1 - t0))s), initramfs" \
     "$(du -h "$out/initramfs.cpio" | cut -f1)" >&2

# Does KVM boot this kernel?  /dev/kvm can be there and KVM still hang
# the guest (seen on these machines: nested virtualisation), so boot the
# kernel once without an initramfs: it must reach its "Kernel panic"
# (no root file system) and, with panic=-1 and -no-reboot, end qemu.
# The answer is cached until the host reboots.
kvm_works() {
	local stamp
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	stamp=${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/vm-kvm-probe-$(cat \
		/proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
	if [ ! -f "$stamp" ]; then
		timeout -k 5 20 qemu-system-x86_64 -accel kvm -m 256M \
			-nographic -no-reboot -monitor none \
			-serial "file:$out/kvm-probe.log" -kernel "$kernel" \
			-append "console=ttyS0 panic=-1" \
			>/dev/null 2>&1 </dev/null || true
		if grep -q 'Kernel panic' "$out/kvm-probe.log" 2>/dev/null; then
			echo yes >"$stamp"
		else
			echo no >"$stamp"
		fi
	fi
	[ "$(cat "$stamp")" = yes ]
}

accel=${DIRTYD_VM_ACCEL:-auto}
case $accel in
auto)
	if kvm_works; then
		accel=kvm
	else
		accel=tcg
	fi ;;
kvm|tcg) ;;
*) die "DIRTYD_VM_ACCEL=$accel: auto, kvm or tcg" ;;
esac
accel_args=(-accel "$accel")
echo "run.sh: accelerator $accel" >&2

# ttyS0: the console (kernel log and a copy of the test output);
# ttyS1: the results.  hugepages: 1 MiB mock leaves need contiguous memory.
# DIRTYD_VM_ENGINE: unknown to the kernel, so it lands in /init's
# environment, and from there in every test's.
cmdline="console=ttyS0 panic=-1 loglevel=4 hugepages=64"
cmdline="$cmdline DIRTYD_VM_ENGINE=$engine DIRTYD_VM_KERNEL=$release"
qemu=(qemu-system-x86_64 "${accel_args[@]}" -m "${DIRTYD_VM_MEM:-1G}"
      -smp "${DIRTYD_VM_CPUS:-2}" -nographic -no-reboot -monitor none
      -serial "file:$console" -serial "file:$results"
      -kernel "$kernel" -initrd "$out/initramfs.cpio" -append "$cmdline")
echo "run.sh: ${qemu[*]}" >"$out/qemu.cmd"
t2=$(date +%s)
set +e
timeout -k 10 "$timeout_s" "${qemu[@]}" >"$out/qemu.log" 2>&1 </dev/null
qemu_rc=$?
set -e
t3=$(date +%s)
echo "run.sh: guest ran $((t3 - t2))s (qemu exit $qemu_rc)" >&2

passed=0
failed=0
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}
pass() {
	echo "ok: $*"
	passed=$((passed + 1))
}

[ -f "$results" ] || : >"$results"
tr -d '\r' <"$results" >"$results.txt"
[ -f "$console" ] || : >"$console"

if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
	fail "the guest did not finish within ${timeout_s}s"
elif [ "$qemu_rc" -ne 0 ]; then
	fail "qemu exited $qemu_rc: $(tail -3 "$out/qemu.log" | tr '\n' ' ')"
fi
if ! grep -q '^DIRTYD-VM BEGIN ' "$results.txt"; then
	fail "/init never started (see $console)"
fi
if ! grep -q '^DIRTYD-VM SUMMARY ' "$results.txt"; then
	fail "no summary from /init: the guest crashed or hung"
fi
if grep -Eq 'Kernel panic|BUG:|WARNING:|Oops|Call Trace' "$console"; then
	fail "the kernel complained:"
	grep -E -A3 'Kernel panic|BUG:|WARNING:|Oops' "$console" | head -40
fi
grep '^DIRTYD-VM BEGIN ' "$results.txt" || true
if grep -q '^DIRTYD-VM BEGIN ' "$results.txt" &&
   ! grep -q "^DIRTYD-VM BEGIN .* engine=$engine\$" "$results.txt"; then
	fail "the guest did not get DIRTYD_VM_ENGINE=$engine"
fi

# The guest's tests.
while read -r _ _ name verdict status ms; do
	if [ "$verdict" = PASS ]; then
		pass "guest $name ($status, $ms)"
	else
		fail "guest $name ($status, $ms):"
		grep -F "DIRTYD-VM OUT $name " "$results.txt" |
			cut -d' ' -f4- | tail -60
	fi
done < <(grep '^DIRTYD-VM RESULT ' "$results.txt")

# The scenarios: the sim must answer what the kernel answered.
runner=$(awk '$1 == "bin" && $2 ~ /\/scenario_runner$/ { print $2 }' \
	"$manifest")
while read -r kind name scn; do
	[ "$kind" = scenario ] || continue
	k=$out/$name.kernel
	s=$out/$name.sim
	grep -F "DIRTYD-VM OUT scenario:$name " "$results.txt" |
		cut -d' ' -f4- >"$k" || true
	if [ ! -s "$k" ]; then
		fail "scenario $name: no transcript from the kernel"
		continue
	fi
	set +e
	"$runner" --backend sim --kernel "$release" "$scn" >"$s" 2>&1
	src=$?
	set -e
	if [ $src -gt 1 ]; then
		fail "scenario $name: the sim runner failed ($src):"
		cat "$s"
	elif ! diff -u --label "Linux $release $name" \
		--label "sim as $release $name" "$k" "$s" >"$out/$name.diff"; then
		fail "scenario $name: the sim emulating $release differs from" \
		     "Linux $release (the kernel is right: fix kernel/sim/):"
		cat "$out/$name.diff"
	else
		pass "scenario $name: sim as $release = Linux $release" \
		     "($(wc -l <"$k") operations)"
	fi
	golden=$recorded/$name.kernel
	if [ -n "$record" ]; then
		mkdir -p "$recorded"
		cp "$k" "$golden"
		echo "run.sh: recorded $golden" >&2
	elif [ ! -f "$golden" ]; then
		fail "scenario $name: nothing recorded for Linux $release" \
		     "($golden); record it: tests/vm/run.sh --manifest" \
		     "$manifest --version $version --record"
	elif ! cmp -s "$golden" "$k"; then
		line=$(cmp "$golden" "$k" 2>/dev/null | sed -n 's/.* line \([0-9]*\)$/\1/p')
		fail "scenario $name: Linux $release ($version) no longer" \
		     "answers what $golden recorded, from transcript line" \
		     "${line:-?}; if the scenario changed or the kernel is" \
		     "right, re-record: tests/vm/run.sh --manifest $manifest" \
		     "--version $version --record"
		diff -u --label "recorded on $release" --label "Linux $release now" \
			"$golden" "$k" || true
	fi
done <"$guest_manifest"

echo "run.sh: logs in $out"
echo "vm (Linux $release, $variant kernel, engine $engine): $passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
	echo "--- last console lines ($console)"
	tail -30 "$console" | tr -d '\r'
	exit 1
fi
[ -n "$keep" ] || rm -rf "$out"
exit 0
