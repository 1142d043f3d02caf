#!/usr/bin/env bash
# Runs the libvirt_cpi job of a release tarball as BOSH runs it, against the
# host's libvirtd (qemu:///system): the job's templates (from the tarball's
# job, rendered by tests/release/lib/job_renderer.rb: no bosh CLI command
# renders job templates outside create-env/deploy) are installed at
# /var/vcap/jobs/libvirt_cpi next to the compiled packages of
# scripts/compile-release.sh, and the rendered bin/cpi runs in the
# stemcell-like chroot with PATH=/usr/sbin:/usr/bin:/sbin:/bin only, as the
# director runs it. Calls: info, create_stemcell, create_vm, has_vm,
# create_disk, attach_disk (checked in the domain XML), detach_disk,
# delete_disk, delete_vm, delete_stemcell. Everything it makes (isolated
# network without <ip>, pool, domains, volumes) carries a random prefix and
# is removed at exit, also on failure.
#
# Usage: tests/release/job_lifecycle.sh RELEASE_TGZ COMPILE_WORK_DIR STEMCELL_DIR
#   COMPILE_WORK_DIR: the --work dir of scripts/compile-release.sh
#   STEMCELL_DIR:     the OUTDIR of tests/e2e/stemcell/build.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$#" -eq 3 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
release=$1 work=$(cd "$2" && pwd) stemcells=$(cd "$3" && pwd)
root=$("${repo}/scripts/stemcell-chroot.sh")
vcap="${work}/vcap"
uri=qemu:///system
virsh() { command virsh -q -c "$uri" "$@"; }

prefix="rb$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')-"
net="${prefix}net" pool="${prefix}pool" bridge="${prefix%-}"
store="/var/lib/libvirt/${prefix}store"
scratch=$(mktemp -d)
failed=0

cleanup() {
  set +e
  for d in $(virsh list --all --name | grep "^${prefix}"); do
    virsh destroy "$d" >/dev/null 2>&1
    virsh undefine --nvram "$d" >/dev/null 2>&1 || virsh undefine "$d" >/dev/null 2>&1
  done
  if virsh pool-info "$pool" >/dev/null 2>&1; then
    for v in $(virsh vol-list "$pool" | awk '{print $1}'); do virsh vol-delete --pool "$pool" "$v" >/dev/null 2>&1; done
    virsh pool-destroy "$pool" >/dev/null 2>&1
    virsh pool-undefine "$pool" >/dev/null 2>&1
  fi
  virsh net-destroy "$net" >/dev/null 2>&1
  virsh net-undefine "$net" >/dev/null 2>&1
  rm -rf "$store" "$scratch" "${vcap}/jobs/libvirt_cpi" "${vcap}/data/tmp"
  rm -f /var/log/libvirt/qemu/"${prefix}"*
}
trap cleanup EXIT

# An isolated network: no <ip>, no <forward>, IPv6 off on its bridge.
cat > "${scratch}/net.xml" <<EOF
<network><name>${net}</name><bridge name='${bridge}' stp='off'/></network>
EOF
# with_ipv6_off CMD...: runs CMD while new interfaces start with IPv6 off (the
# bridge and the VM's tap must never send router solicitations).
v6_default=/proc/sys/net/ipv6/conf/default/disable_ipv6
with_ipv6_off() {
  local old status=0
  old=$(cat "$v6_default" 2>/dev/null || echo 1)
  echo 1 > "$v6_default" 2>/dev/null || true
  "$@" || status=$?
  echo "$old" > "$v6_default" 2>/dev/null || true
  return "$status"
}
virsh net-define "${scratch}/net.xml" >/dev/null
with_ipv6_off virsh net-start "$net" >/dev/null
echo 1 > "/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6" 2>/dev/null || true

# The job, rendered from the release tarball's own job (job.MF is its spec).
mkdir -p "${scratch}/job"
tar -xzf "$release" -C "$scratch" jobs/libvirt_cpi.tgz
tar -xzf "${scratch}/jobs/libvirt_cpi.tgz" -C "${scratch}/job"
cp "${scratch}/job/job.MF" "${scratch}/job/spec"
ruby -I "${repo}/tests/release/lib" -rjob_renderer -e '
  props = {
    "libvirt" => { "uri" => ARGV[1], "storage_pool" => ARGV[2], "store_dir" => ARGV[3],
                   "network" => ARGV[4], "domain_type" => "qemu", "name_prefix" => ARGV[5] },
    "agent" => { "mbus" => "https://mbus:not-a-secret@0.0.0.0:6868" },
    "log_level" => "debug",
  }
  ReleaseTest::JobRenderer.new(ARGV[0] + "/job").render_all(props, ARGV[0] + "/rendered")
' "$scratch" "$uri" "$pool" "$store" "$net" "$prefix"
mkdir -p "${vcap}/jobs" "${vcap}/data/tmp"
cp -a "${scratch}/rendered" "${vcap}/jobs/libvirt_cpi"
echo "rendered job: $(cd "${vcap}/jobs/libvirt_cpi" && find . -type f | sort | tr '\n' ' ')"
cp -a "${stemcells}/qcow2" "${vcap}/data/tmp/stemcell"

# cpi METHOD ARGS_JSON: one call through the rendered bin/cpi; prints the result.
cpi() {
  local request response
  request=$(printf '{"method":"%s","arguments":%s,"context":{"director_uuid":"release-build-test"},"api_version":2}' "$1" "$2")
  response=$(printf '%s' "$request" | "${repo}/scripts/in-stemcell-chroot.sh" "$root" "$vcap" /var/vcap \
      --bind /run/libvirt:/run/libvirt -- /var/vcap/jobs/libvirt_cpi/bin/cpi 2>>"${scratch}/cpi.stderr")
  if ! ruby -rjson -e 'r = JSON.parse(ARGV[0]); exit(r["error"].nil? ? 0 : 1)' "$response"; then
    echo "FAIL  $1: ${response}" >&2
    tail -n 20 "${scratch}/cpi.stderr" >&2
    return 1
  fi
  ruby -rjson -e 'puts JSON.generate(JSON.parse(ARGV[0])["result"])' "$response"
}
check() {
  if eval "$2"; then echo "PASS  $1"; return; fi
  echo "FAIL  $1" >&2
  [ -n "${domain:-}" ] && virsh dumpxml "$domain" 2>&1 | grep -A4 '<disk' >&2
  tail -n 20 "${scratch}/cpi.stderr" >&2
  exit 1
}

info=$(cpi info '[]')
check "info: api_version 2, openstack formats ($info)" '[[ $info == *"\"api_version\":2"* && $info == *openstack-qcow2* ]]'
props=$(cat "${stemcells}/qcow2/cloud_properties.json")
sc=$(cpi create_stemcell "[\"/var/vcap/data/tmp/stemcell/image\",${props}]" | tr -d '"')
check "create_stemcell: ${sc}, volume in ${pool}" '[[ $sc == sc-* ]] && virsh vol-list "$pool" | grep . >/dev/null'
networks="{\"private\":{\"type\":\"manual\",\"ip\":\"10.244.0.10\",\"netmask\":\"255.255.255.0\",\"gateway\":\"10.244.0.1\",\"dns\":[\"10.244.0.2\"],\"default\":[\"dns\",\"gateway\"],\"cloud_properties\":{\"name\":\"${net}\"}}}"
with_ipv6_off cpi create_vm "[\"agent-release-build\",\"${sc}\",{\"cpu\":1,\"ram\":256,\"ephemeral_disk\":128},${networks},[],{}]" > "${scratch}/created"
created=$(cat "${scratch}/created")
vm=$(ruby -rjson -e 'r = JSON.parse(ARGV[0]); puts(r.is_a?(Array) ? r[0] : r)' "$created")
# The domain of a VM CID: its name carries the name_prefix.
domain=$(virsh list --all --name | grep -F -- "$vm" | head -n 1)
check "create_vm: ${vm} is domain ${domain}, running" '[[ -n $domain && $(virsh domstate "$domain") == running ]]'
check "has_vm ${vm}" '[[ $(cpi has_vm "[\"${vm}\"]") == true ]]'
disk=$(cpi create_disk "[32,{},\"${vm}\"]" | tr -d '"')
disk_vol=$(virsh vol-list "$pool" | awk -v d="$disk" 'index($1, d) {print $1}' | head -n 1)
check "create_disk: ${disk}, volume ${disk_vol}" '[[ -n $disk && -n $disk_vol ]]'
cpi attach_disk "[\"${vm}\",\"${disk}\"]" >/dev/null
check "attach_disk: the domain XML names volume ${disk_vol}" 'virsh dumpxml "$domain" | grep -F "volume='"'"'${disk_vol}'"'"'" >/dev/null'
# detach_disk returns once the guest has released the device; a guest still
# booting under TCG may take longer than libvirt.detach_timeout, and the call
# then fails with ok_to_retry, the disk still attached: retry as an operator would.
detached=0
for _ in 1 2 3 4; do
  if cpi detach_disk "[\"${vm}\",\"${disk}\"]" >/dev/null 2>"${scratch}/detach.err"; then
    detached=1
    break
  fi
  grep -q '"ok_to_retry":true' "${scratch}/detach.err" || { cat "${scratch}/detach.err" >&2; exit 1; }
  echo "detach_disk: the guest has not released the disk yet (ok_to_retry): again"
done
check "detach_disk answered success" '[ "$detached" = 1 ]'
# Both definitions no longer hold it (the live one is polled briefly all the same).
names_disk() { virsh dumpxml "$@" "$domain" | grep -F "volume='${disk_vol}'" >/dev/null; }  # no -q: virsh must not get SIGPIPE (pipefail)
check "detach_disk: the persistent domain XML no longer names it" '! names_disk --inactive'
gone=0
for _ in $(seq 90); do if ! names_disk; then gone=1; break; fi; sleep 1; done
check "detach_disk: the live domain XML no longer names it" '[ "$gone" = 1 ]'
cpi delete_disk "[\"${disk}\"]" >/dev/null
cpi delete_vm "[\"${vm}\"]" >/dev/null
check "delete_vm: the domain is gone" '! virsh dominfo "$domain" >/dev/null 2>&1'
cpi delete_stemcell "[\"${sc}\"]" >/dev/null
check "delete_stemcell, delete_disk: the pool holds no volume" '[[ -z $(virsh vol-list "$pool") ]]'
echo "lifecycle through the rendered bin/cpi: ok"
