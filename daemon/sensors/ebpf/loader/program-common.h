/* What both libbpf programs (the loader, and the guard in daemon/guard/kernel) do alike:
 * read the subject argument, and open and load their BPF object with its configuration. */
#pragma once
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include <unistd.h>

/* uid:UID, or cgroup:ID[:LEVEL]. Fills what it names (a level only when given: the caller sets
 * its own "exact" first); 0 when it parsed, -1 when not. */
static int parse_subject(const char *arg, __u32 *has_uid, __u32 *uid, __u64 *cgroup, __u32 *level) {
  if (strncmp(arg, "uid:", 4) == 0) {
    *has_uid = 1;
    *uid = (__u32)strtoul(arg + 4, NULL, 10);
    return 0;
  }
  if (strncmp(arg, "cgroup:", 7) != 0) return -1;
  char *end = NULL;
  *cgroup = strtoull(arg + 7, &end, 10);
  if (end && *end == ':') *level = (__u32)strtoul(end + 1, NULL, 10);
  return 0;
}

/* the BPF object at `path`, its .rodata set to `cfg`, loaded; NULL (said on stderr) when not */
static struct bpf_object *load_configured(const char *path, const void *cfg, size_t size) {
  struct bpf_object *obj = bpf_object__open_file(path, NULL);
  if (!obj) { fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno)); return NULL; }
  struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
  if (!rodata || bpf_map__set_initial_value(rodata, cfg, size)) { fprintf(stderr, "cannot set the program's configuration\n"); return NULL; }
  int err = bpf_object__load(obj);
  if (err) { fprintf(stderr, "cannot load %s: %s\n", path, strerror(-err)); return NULL; }
  return obj;
}

/* a buffer of stdin's command lines, each passed to `run` once whole */
struct commands {
  char line[4200];
  size_t have;
};

/* reads what stdin has (poll said so) and runs each whole line; -1 when stdin is closed. A
 * line too long for the buffer is dropped. */
static int read_commands(struct commands *c, void (*run)(char *)) {
  ssize_t got = read(0, c->line + c->have, sizeof(c->line) - 1 - c->have);
  if (got <= 0) return -1;
  c->have += (size_t)got;
  c->line[c->have] = 0;
  char *start = c->line, *nl;
  while ((nl = strchr(start, '\n'))) { *nl = 0; run(start); start = nl + 1; }
  c->have = strlen(start);
  memmove(c->line, start, c->have + 1);
  if (c->have >= sizeof(c->line) - 1) c->have = 0;
  return 0;
}
