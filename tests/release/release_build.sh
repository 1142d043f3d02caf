#!/usr/bin/env bash
# The release-build tier: the BOSH release as an operator and a director get it.
#   1. scripts/create-release.sh (the real bosh create-release) twice: both
#      tarballs must carry the same job and package fingerprints;
#   2. scripts/compile-release.sh: every package compiled from the tarball in
#      the stemcell-like chroot (compiled packages cached by fingerprint);
#   3. nothing leaks in from the host: the chroot has no libvirt, pkg-config,
#      meson or ninja, and the compiled cpi and its driver module resolve
#      libvirt, gnutls, glib, libxml2, libtirpc, libssh ... from
#      /var/vcap/packages only (ldd inside the chroot, RPATH);
#   4. tests/release/job_lifecycle.sh: the rendered job's bin/cpi against the
#      host's libvirtd.
# Usage: tests/release/release_build.sh [WORK_DIR]   (default: build/release-build)
# Needs root, ruby, debootstrap and libvirt (a libvirtd is started when none runs). RELEASE_BUILD_NO_CACHE=1
# recompiles every package. Prints PASS/FAIL lines and the phase times.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-${repo}/build/release-build}
mkdir -p "$work"
work=$(cd "$work" && pwd)
t0=$(date +%s)
phase() { echo "[release-build] $1: $(( $(date +%s) - ${2} ))s"; }
pass() { echo "PASS  $1"; }
fail() { echo "FAIL  $1" >&2; exit 1; }

# 1. create-release, twice.
t=$(date +%s)
"${repo}/scripts/create-release.sh" --working-tree --tarball "${work}/release-1.tgz" >"${work}/create-release-1.log" 2>&1 ||
  { tail -n 30 "${work}/create-release-1.log" >&2; fail "bosh create-release"; }
"${repo}/scripts/create-release.sh" --working-tree --tarball "${work}/release.tgz" >"${work}/create-release-2.log" 2>&1 ||
  { tail -n 30 "${work}/create-release-2.log" >&2; fail "bosh create-release (second run)"; }
fingerprints() {
  tar -xzf "$1" -O release.MF | ruby -ryaml -e '
    mf = YAML.safe_load($stdin.read)
    (mf["jobs"] + mf["packages"]).each { |x| puts "#{x["name"]} #{x["fingerprint"]}" }'
}
fp1=$(fingerprints "${work}/release-1.tgz")
fp2=$(fingerprints "${work}/release.tgz")
[ -n "$fp1" ] && [ "$fp1" = "$fp2" ] || fail "two create-release runs give different fingerprints:\n${fp1}\n--\n${fp2}"
pass "bosh create-release twice, same fingerprints: $(echo "$fp2" | tr '\n' ' ')"
rm -f "${work}/release-1.tgz"
phase "create-release x2" "$t"

# 2. compile every package from the tarball.
t=$(date +%s)
root=$("${repo}/scripts/stemcell-chroot.sh")
phase "stemcell chroot" "$t"
t=$(date +%s)
cache_flag=()
[ "${RELEASE_BUILD_NO_CACHE:-0}" = 1 ] && cache_flag=(--no-cache)
"${repo}/scripts/compile-release.sh" "${work}/release.tgz" --work "${work}/compile" "${cache_flag[@]}" |
  tee "${work}/compile.log"
pass "every package compiled from the release tarball in the chroot"
phase "compile packages" "$t"

# 3. nothing from the host.
leaks=$(cd "$root" && { ls -d usr/include/libvirt usr/include/gnutls usr/include/glib-2.0 2>/dev/null
  find usr/lib usr/share -name 'libvirt*.pc' -o -name 'gnutls.pc' -o -name 'glib-2.0.pc' 2>/dev/null
  for b in pkg-config pkgconf meson ninja xsltproc xmllint virsh; do ls usr/bin/$b 2>/dev/null; done; } || true)
[ -z "$leaks" ] || fail "the stemcell chroot has what a stemcell lacks: ${leaks}"
pass "the chroot has no libvirt/gnutls/glib headers, .pc files, pkg-config, meson, ninja, xsltproc"
in_chroot() { "${repo}/scripts/in-stemcell-chroot.sh" "$root" "${work}/compile/vcap" / -- "$@"; }
pkg=/var/vcap/packages
cpi_bin="${pkg}/libvirt_cpi/bin/cpi"
module="${pkg}/libvirt_cpi/lib/bosh-libvirt-cpi/cpi_libvirt.so"
for object in "$cpi_bin" "$module"; do
  deps=$(in_chroot ldd "$object")
  echo "$deps" > "${work}/ldd-$(basename "$object").txt"
  ! grep -q 'not found' <<<"$deps" || fail "ldd ${object}: unresolved: $(grep 'not found' <<<"$deps")"
  # Only the C/C++ runtime, zlib and OpenSSL's libcrypto (libssh) come from the stemcell.
  outside=$(awk '$2 == "=>" && $3 !~ "^/var/vcap/packages/" {print $1}' <<<"$deps" |
    grep -vE '^(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libz|libcrypto|libresolv)\.so' || true)
  [ -z "$outside" ] || fail "${object} loads from the stemcell: ${outside}"
  rpath=$(in_chroot readelf -d "$object" | grep -E 'R(UN)?PATH' || true)
  [ -z "$rpath" ] || [[ $rpath == *"[${pkg}/libvirt-client/lib]"* ]] || fail "${object}: ${rpath}"
  echo "      $(basename "$object"): $(grep -c '=>' <<<"$deps") libraries, $(grep -c "=> ${pkg}/" <<<"$deps") from /var/vcap/packages; ${rpath:-no RPATH}"
done
for lib in libvirt.so.0 libgnutls.so.30 libglib-2.0.so.0 libxml2.so.2 libtirpc.so.3 libssh.so.4; do
  grep -q "${lib} => ${pkg}/libvirt-client/lib/" "${work}/ldd-cpi_libvirt.so.txt" ||
    fail "cpi_libvirt.so does not take ${lib} from ${pkg}/libvirt-client"
done
pass "cpi and cpi_libvirt.so take libvirt, gnutls, glib, libxml2, libtirpc, libssh from /var/vcap/packages only"

# 4. the job as BOSH runs it.
t=$(date +%s)
stemcell_dir="${work}/stemcell"
"${repo}/tests/e2e/stemcell/build.sh" "$stemcell_dir" >"${work}/stemcell.log" 2>&1 ||
  { tail -n 20 "${work}/stemcell.log" >&2; fail "tests/e2e/stemcell/build.sh"; }
# A libvirtd (and virtlogd) is started for it only when none runs, and stopped again after.
python3 "${repo}/scripts/libvirt_env.py" -- \
  "${repo}/tests/release/job_lifecycle.sh" "${work}/release.tgz" "${work}/compile" "$stemcell_dir" ||
  fail "the job lifecycle"
phase "job lifecycle" "$t"
phase "release-build total" "$t0"
