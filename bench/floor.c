/* floor: the least a client of the system libvirt can do for one CPI call, as the floor the
 * `cpi` process is measured against (bench/lookups_bench.py compiles it with `cc` and runs it
 * as a process per call, exactly like `cpi`). It opens URI, makes the libvirt calls its
 * arguments list, in order, and closes the connection: nothing else (no config, no JSON, no
 * logging). Each step is the call the CPI makes for that step (the bench gives each method's
 * steps, counted by the driver tests).
 *
 *   floor URI STEP [STEP ...]
 *
 * Steps (one request to the daemon each, a stream one upload or download):
 *   dom=NAME          virDomainLookupByName; absent is fine (later domain steps are skipped)
 *   meta              virDomainGetMetadata of the CPI's namespace (persistent definition)
 *   xml               virDomainGetXMLDesc of the persistent definition
 *   active            virDomainIsActive
 *   set-meta=TEXT     virDomainSetMetadata <vm> element, CONFIG (+LIVE when the handle's id
 *                     says it runs), as LibvirtHypervisor::set_domain_metadata
 *   set-title=TEXT    the same for the title
 *   attach=XML        virDomainIsActive + virDomainAttachDeviceFlags (as attach_device, live)
 *   scan=VOLUME       every domain on the host checked for one that names VOLUME, as attach_disk
 *                     and delete_disk do (LibvirtCloud::domains_holding): virConnectListAllDomains,
 *                     then per domain virDomainLookupByName and its persistent XML, and unless
 *                     that names the volume virDomainIsActive (+ its live XML when it runs);
 *                     fails when a domain other than the one of `dom=` names it
 *   pool=NAME         virStoragePoolLookupByName
 *   pool-info         virStoragePoolGetInfo
 *   pool-xml          virStoragePoolGetXMLDesc
 *   vol=NAME          virStorageVolLookupByName in the pool; absent is fine (the volume steps
 *                     below name a volume looked up or created before, by its name)
 *   vol-xml=NAME      virStorageVolGetXMLDesc
 *   vol-path=NAME     virStorageVolGetPath
 *   vol-create=NAME:BYTES:FORMAT   virStorageVolCreateXML (mode 0600)
 *   download=NAME:BYTES  virStorageVolGetInfo + a download of up to BYTES (as download_volume)
 *   upload=NAME:BYTES    an upload of BYTES zero bytes
 * Exit status 0, or 1 with libvirt's message on stderr. */

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_ns = "https://github.com/bosh-libvirt-cpi/xmlns/vm/1";

static void quiet(void *opaque, virErrorPtr error) {
  (void)opaque;
  (void)error;
}

static int fail(const char *step) {
  const char *message = virGetLastErrorMessage();
  fprintf(stderr, "floor: %s: %s\n", step, message ? message : "?");
  return 1;
}

static int absent(int code) {
  return virGetLastErrorCode() == code;
}

static unsigned int metadata_flags(virDomainPtr dom) {
  unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
  if (virDomainGetID(dom) != (unsigned int)-1) flags |= VIR_DOMAIN_AFFECT_LIVE;
  return flags;
}

static int send_zeros(virStreamPtr stream, char *data, size_t nbytes, void *opaque) {
  size_t *left = opaque;
  size_t n = nbytes < *left ? nbytes : *left;
  (void)stream;
  memset(data, 0, n);
  *left -= n;
  return (int)n;
}

#define MAX_VOLUMES 8

struct named_volume {
  char name[256];
  virStorageVolPtr vol;
};

static struct named_volume volumes[MAX_VOLUMES];

/* The volume named `name` (up to the first ':' of it) looked up or created before, or NULL. */
static virStorageVolPtr volume_named(const char *name) {
  size_t length = strcspn(name, ":");
  int i;
  for (i = 0; i < MAX_VOLUMES; ++i) {
    if (volumes[i].vol && strlen(volumes[i].name) == length &&
        strncmp(volumes[i].name, name, length) == 0) {
      return volumes[i].vol;
    }
  }
  return NULL;
}

static int keep_volume(const char *name, virStorageVolPtr vol) {
  int i;
  for (i = 0; i < MAX_VOLUMES; ++i) {
    if (!volumes[i].vol) {
      snprintf(volumes[i].name, sizeof volumes[i].name, "%s", name);
      volumes[i].vol = vol;
      return 0;
    }
  }
  virStorageVolFree(vol);
  fprintf(stderr, "floor: more than %d volumes\n", MAX_VOLUMES);
  return 2;
}

/* Whether the definition `xml` names the volume `volume` (as source volume='...'). */
static int names_volume(const char *xml, const char *volume) {
  char quoted[300];
  snprintf(quoted, sizeof quoted, "'%s'", volume);
  return xml != NULL && strstr(xml, quoted) != NULL;
}

/* The `scan=` step: 0, or 1 with a message when a domain other than `own` names `volume`. */
static int scan_domains(virConnectPtr conn, virDomainPtr own, const char *volume) {
  virDomainPtr *listed = NULL;
  const char *own_name = own ? virDomainGetName(own) : NULL;
  int count = virConnectListAllDomains(conn, &listed, 0);
  int i, rc = 0;
  if (count < 0) return fail("scan");
  for (i = 0; i < count; ++i) {
    const char *name = virDomainGetName(listed[i]);
    virDomainPtr d = rc == 0 ? virDomainLookupByName(conn, name) : NULL;
    char *xml;
    int held;
    if (!d) {
      if (rc == 0 && !absent(VIR_ERR_NO_DOMAIN)) rc = fail("scan");
      virDomainFree(listed[i]);
      continue;
    }
    xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
    held = names_volume(xml, volume);
    free(xml);
    if (!held && virDomainIsActive(d) == 1) {
      xml = virDomainGetXMLDesc(d, 0);
      held = names_volume(xml, volume);
      free(xml);
    }
    if (held && (own_name == NULL || strcmp(name, own_name) != 0)) {
      fprintf(stderr, "floor: scan: domain %s holds %s\n", name, volume);
      rc = 1;
    }
    virDomainFree(d);
    virDomainFree(listed[i]);
  }
  free(listed);
  return rc;
}

static unsigned long long bytes_after_colon(const char *arg) {
  const char *colon = strrchr(arg, ':');
  return colon ? strtoull(colon + 1, NULL, 10) : 0;
}

int main(int argc, char **argv) {
  virConnectPtr conn;
  virDomainPtr dom = NULL;
  virStoragePoolPtr pool = NULL;
  int i, rc = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: floor URI STEP [STEP ...]\n");
    return 2;
  }
  virSetErrorFunc(NULL, quiet);
  conn = virConnectOpen(argv[1]);
  if (conn == NULL) return fail("open");
  for (i = 2; i < argc && rc == 0; ++i) {
    const char *step = argv[i];
    const char *arg = strchr(step, '=');
    arg = arg ? arg + 1 : "";
    if (strncmp(step, "dom=", 4) == 0) {
      if (dom) virDomainFree(dom);
      dom = virDomainLookupByName(conn, arg);
      if (!dom && !absent(VIR_ERR_NO_DOMAIN)) rc = fail(step);
    } else if (strcmp(step, "meta") == 0) {
      char *text = dom ? virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, k_ns,
                                              VIR_DOMAIN_AFFECT_CONFIG)
                       : NULL;
      if (dom && !text) rc = fail(step);
      free(text);
    } else if (strcmp(step, "xml") == 0 || strcmp(step, "xml-live") == 0) {
      char *text = dom ? virDomainGetXMLDesc(dom, strcmp(step, "xml") == 0
                                                      ? VIR_DOMAIN_XML_INACTIVE : 0)
                       : NULL;
      if (dom && !text) rc = fail(step);
      free(text);
    } else if (strcmp(step, "active") == 0) {
      if (dom && virDomainIsActive(dom) < 0) rc = fail(step);
    } else if (strncmp(step, "set-meta=", 9) == 0) {
      if (dom && virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, arg, "bosh", k_ns,
                                      metadata_flags(dom)) < 0) {
        rc = fail(step);
      }
    } else if (strncmp(step, "set-title=", 10) == 0) {
      if (dom && virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_TITLE, arg, NULL, NULL,
                                      metadata_flags(dom)) < 0) {
        rc = fail(step);
      }
    } else if (strncmp(step, "attach=", 7) == 0) {
      unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
      int active = dom ? virDomainIsActive(dom) : -1;
      if (active == 1) flags |= VIR_DOMAIN_AFFECT_LIVE;
      if (!dom || active < 0 || virDomainAttachDeviceFlags(dom, arg, flags) < 0) rc = fail(step);
    } else if (strncmp(step, "scan=", 5) == 0) {
      rc = scan_domains(conn, dom, arg);
    } else if (strncmp(step, "pool=", 5) == 0) {
      if (pool) virStoragePoolFree(pool);
      pool = virStoragePoolLookupByName(conn, arg);
      if (!pool) rc = fail(step);
    } else if (strcmp(step, "pool-info") == 0) {
      virStoragePoolInfo info;
      if (!pool || virStoragePoolGetInfo(pool, &info) < 0) rc = fail(step);
    } else if (strcmp(step, "pool-xml") == 0) {
      char *text = pool ? virStoragePoolGetXMLDesc(pool, 0) : NULL;
      if (!text) rc = fail(step);
      free(text);
    } else if (strncmp(step, "vol=", 4) == 0) {
      virStorageVolPtr vol = pool ? virStorageVolLookupByName(pool, arg) : NULL;
      if (vol) {
        rc = keep_volume(arg, vol);
      } else if (!pool || !absent(VIR_ERR_NO_STORAGE_VOL)) {
        rc = fail(step);
      }
    } else if (strncmp(step, "vol-xml=", 8) == 0 || strncmp(step, "vol-path=", 9) == 0) {
      virStorageVolPtr vol = volume_named(arg);
      char *text = !vol ? NULL
                   : step[4] == 'x' ? virStorageVolGetXMLDesc(vol, 0) : virStorageVolGetPath(vol);
      if (!text) rc = fail(step);
      free(text);
    } else if (strncmp(step, "vol-create=", 11) == 0) {
      char name[256], format[16], xml[1024];
      unsigned long long bytes = 0;
      virStorageVolPtr vol;
      if (sscanf(arg, "%255[^:]:%llu:%15s", name, &bytes, format) != 3) {
        fprintf(stderr, "floor: %s: expected NAME:BYTES:FORMAT\n", step);
        rc = 2;
        break;
      }
      snprintf(xml, sizeof xml,
               "<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
               "<target><format type='%s'/><permissions><mode>0600</mode></permissions>"
               "</target></volume>",
               name, bytes, format);
      vol = pool ? virStorageVolCreateXML(pool, xml, 0) : NULL;
      rc = vol ? keep_volume(name, vol) : fail(step);
    } else if (strncmp(step, "download=", 9) == 0) {
      virStorageVolPtr vol = volume_named(arg);
      virStorageVolInfo info;
      unsigned long long want = bytes_after_colon(arg);
      virStreamPtr stream = virStreamNew(conn, 0);
      char buffer[65536];
      int got = 0;
      if (!vol || !stream || virStorageVolGetInfo(vol, &info) < 0 ||
          virStorageVolDownload(vol, stream, 0, info.capacity < want ? info.capacity : want,
                                0) < 0) {
        rc = fail(step);
      } else {
        while ((got = virStreamRecv(stream, buffer, sizeof buffer)) > 0) {
        }
        if (got < 0 || virStreamFinish(stream) < 0) rc = fail(step);
      }
      if (stream) virStreamFree(stream);
    } else if (strncmp(step, "upload=", 7) == 0) {
      virStorageVolPtr vol = volume_named(arg);
      size_t left = (size_t)bytes_after_colon(arg);
      size_t length = left;
      virStreamPtr stream = virStreamNew(conn, 0);
      if (!vol || !stream || virStorageVolUpload(vol, stream, 0, length, 0) < 0 ||
          virStreamSendAll(stream, send_zeros, &left) < 0 || virStreamFinish(stream) < 0) {
        rc = fail(step);
      }
      if (stream) virStreamFree(stream);
    } else {
      fprintf(stderr, "floor: unknown step '%s'\n", step);
      rc = 2;
    }
  }
  for (i = 0; i < MAX_VOLUMES; ++i) {
    if (volumes[i].vol) virStorageVolFree(volumes[i].vol);
  }
  if (pool) virStoragePoolFree(pool);
  if (dom) virDomainFree(dom);
  virConnectClose(conn);
  return rc;
}
