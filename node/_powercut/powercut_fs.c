/*
 * powercut_fs: a FUSE file system over a backing directory that can lose, on
 * command, what was written since each file's last fsync, as a power cut
 * does, so that crash tests of the node on real files see more than a
 * `kill -9` does (after a kill the page cache keeps every write, synced or
 * not).
 *
 *   powercut_fs BACKING_DIR MOUNT_POINT [--names] [--seed N]
 *
 * It stays in the foreground, on one thread. Writes and truncations go to the
 * backing file at once; before each, the bytes and size it changes are kept
 * in memory as an undo record for the file (by its inode). An fsync or
 * fdatasync of the file drops its records: what was written before it is
 * durable. `mkdir MOUNT_POINT/.powercut` is the cut: every file's records are
 * undone, newest first, which leaves each file as it was at its last fsync;
 * the file system prints one line, "powercut files=F records=R bytes=B
 * names=N", and carries on (the same mkdir later cuts again).
 *
 * With `--names`, names are not durable either until their directory is
 * fsynced: a create, mkdir, link, unlink, rmdir or rename is undone by the
 * cut (newest first, before the bytes) unless every directory it changed was
 * fsynced since. An unlinked file (or a rename's replaced target) waits in
 * BACKING_DIR.trash until then, so that the cut can bring it back. Without
 * `--names`, names are durable at once (more than ext4 promises).
 *
 * With `--seed N`, a cut keeps some of what it could lose, as a real one may:
 * per file, a random number of its oldest unsynced changes (those reached the
 * disk) and, when the first change it undoes is an append, a random prefix of
 * it (a torn write); the seed makes the choices repeat.
 *
 * The model's limits, which tests must not read more into: without `--seed` a
 * cut loses every unsynced byte and name; a torn append keeps a prefix of what
 * was written (never other bytes); names are all lost or kept together; an
 * fsync of a file does not make its own name durable (on ext4 it often does);
 * undo records are kept in memory without a limit until the next fsync or cut
 * (a test tool: the node fsyncs its logs continuously). Caching is off (direct
 * I/O, no attribute or entry timeouts), so the kernel never serves bytes the
 * cut undid.
 *
 * Built with libfuse3 by node/powercut_fs.ts, which mounts it for the tests
 * and soaks that use it.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CUT_NAME "/.powercut"

/* One change to undo: the file's size before it and the bytes it overwrote. */
struct undo {
  struct undo *prev; /* older record of the same file */
  off_t old_size;
  off_t offset;      /* where `saved` goes back */
  size_t saved_len;
  unsigned char saved[];
};

/* The unsynced changes of one file, kept with an fd of its own to undo them by. */
struct file_state {
  struct file_state *next;
  ino_t ino;
  dev_t dev;
  int fd;
  struct undo *newest;
};

static char backing[PATH_MAX];
static char trash[PATH_MAX];
static struct file_state *files;
static int strict_names;

/* A name change not yet durable: undone by the cut unless its directories were fsynced. */
enum name_kind { NAME_CREATE, NAME_MKDIR, NAME_UNLINK, NAME_RMDIR, NAME_RENAME };
struct name_op {
  struct name_op *prev; /* older */
  enum name_kind kind;
  char *path;    /* the name created or removed; a rename's source */
  char *to;      /* a rename's target */
  char *saved;   /* where an unlinked file, or a rename's replaced target, waits (or NULL) */
  char *dir1, *dir2; /* directories whose fsync makes it durable (dir2: a rename's target's) */
  int synced1, synced2;
};
static struct name_op *names_newest;
static unsigned long trash_seq;
static int partial;
static uint64_t rng_state;

/* xorshift64: the cut's choices, repeatable from --seed. */
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int full_path(char *out, const char *path) {
  int n = snprintf(out, PATH_MAX, "%s%s", backing, path);
  return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

#define FULL(var, path)                   \
  char var[PATH_MAX];                     \
  do {                                    \
    int e_ = full_path(var, path);        \
    if (e_ != 0) return e_;               \
  } while (0)

static char *parent_of(const char *path) {
  char *d = strdup(path);
  if (d == NULL) return NULL;
  char *slash = strrchr(d, '/');
  if (slash == d) slash[1] = '\0';
  else if (slash != NULL) *slash = '\0';
  return d;
}

/* A fresh name in the trash directory (a backing path). */
static char *trash_name(void) {
  size_t n = strlen(trash) + 24; /* a slash, 20 digits at most and the terminator */
  char *t = malloc(n);
  if (t != NULL) snprintf(t, n, "%s/%lu", trash, ++trash_seq);
  return t;
}

static void free_name_op(struct name_op *n, int durable) {
  /* Durable: what waited in the trash is gone for good. */
  if (durable && n->saved != NULL) {
    struct stat st;
    if (lstat(n->saved, &st) == 0) {
      if (S_ISDIR(st.st_mode)) rmdir(n->saved);
      else unlink(n->saved);
    }
  }
  free(n->path);
  free(n->to);
  free(n->saved);
  free(n->dir1);
  free(n->dir2);
  free(n);
}

static int note_name(enum name_kind kind, const char *path, const char *to, char *saved) {
  struct name_op *n = calloc(1, sizeof *n);
  if (n == NULL) return -ENOMEM;
  n->kind = kind;
  n->path = strdup(path);
  n->to = to == NULL ? NULL : strdup(to);
  n->saved = saved;
  n->dir1 = parent_of(path);
  n->dir2 = parent_of(to == NULL ? path : to);
  if (n->path == NULL || n->dir1 == NULL || n->dir2 == NULL || (to != NULL && n->to == NULL)) {
    free_name_op(n, 0);
    return -ENOMEM;
  }
  n->prev = names_newest;
  names_newest = n;
  return 0;
}

/* An fsync of directory `dir`: the name changes in it are durable once all theirs are. */
static void names_synced(const char *dir) {
  for (struct name_op **p = &names_newest; *p != NULL;) {
    struct name_op *n = *p;
    if (strcmp(n->dir1, dir) == 0) n->synced1 = 1;
    if (strcmp(n->dir2, dir) == 0) n->synced2 = 1;
    if (n->synced1 && n->synced2) {
      *p = n->prev;
      free_name_op(n, 1);
    } else {
      p = &n->prev;
    }
  }
}

static void undo_names(unsigned long *count) {
  char a[PATH_MAX], b[PATH_MAX];
  while (names_newest != NULL) {
    struct name_op *n = names_newest;
    names_newest = n->prev;
    (*count)++;
    full_path(a, n->path);
    switch (n->kind) {
      case NAME_CREATE:
        unlink(a);
        break;
      case NAME_MKDIR: {
        /* Whatever was made under it goes with it. */
        char *t = trash_name();
        if (t != NULL && rename(a, t) != 0) rmdir(a);
        free(t);
        break;
      }
      case NAME_UNLINK:
        if (n->saved != NULL && rename(n->saved, a) != 0) {
          fprintf(stderr, "powercut_fs: cannot bring back %s: %s\n", n->path, strerror(errno));
        }
        break;
      case NAME_RMDIR:
        mkdir(a, 0755);
        break;
      case NAME_RENAME:
        full_path(b, n->to);
        if (rename(b, a) != 0) {
          fprintf(stderr, "powercut_fs: cannot undo rename to %s: %s\n", n->to, strerror(errno));
        }
        if (n->saved != NULL) rename(n->saved, b);
        break;
    }
    free(n->saved);
    n->saved = NULL;
    free_name_op(n, 0);
  }
}

static struct file_state *state_of(int fd, int create) {
  struct stat st;
  if (fstat(fd, &st) != 0) return NULL;
  for (struct file_state *f = files; f != NULL; f = f->next) {
    if (f->ino == st.st_ino && f->dev == st.st_dev) return f;
  }
  if (!create) return NULL;
  struct file_state *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  /* Its own descriptor, readable and writable whatever the caller's was opened for. */
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  f->fd = open(self, O_RDWR);
  if (f->fd < 0) {
    free(f);
    return NULL;
  }
  f->ino = st.st_ino;
  f->dev = st.st_dev;
  f->next = files;
  files = f;
  return f;
}

static void drop_records(struct file_state *f) {
  while (f->newest != NULL) {
    struct undo *u = f->newest;
    f->newest = u->prev;
    free(u);
  }
}

static void forget(struct file_state *f) {
  for (struct file_state **p = &files; *p != NULL; p = &(*p)->next) {
    if (*p == f) {
      *p = f->next;
      break;
    }
  }
  drop_records(f);
  close(f->fd);
  free(f);
}

/* Keeps what a change of [offset, offset + len) (len 0: a size change only) overwrites. */
static int remember(int fd, off_t offset, size_t len) {
  struct file_state *f = state_of(fd, 1);
  if (f == NULL) return errno ? -errno : -ENOMEM;
  struct stat st;
  if (fstat(f->fd, &st) != 0) return -errno;
  size_t keep = 0;
  if (offset < st.st_size) {
    off_t end = offset + (off_t)len;
    keep = (size_t)((end < st.st_size ? end : st.st_size) - offset);
  }
  struct undo *u = malloc(sizeof *u + keep);
  if (u == NULL) return -ENOMEM;
  u->old_size = st.st_size;
  u->offset = offset;
  u->saved_len = keep;
  if (keep > 0 && pread(f->fd, u->saved, keep, offset) != (ssize_t)keep) {
    int e = errno ? errno : EIO;
    free(u);
    return -e;
  }
  u->prev = f->newest;
  f->newest = u;
  return 0;
}

/* The cut: every file back to its last fsync. */
static void power_cut(void) {
  unsigned long n_files = 0, n_records = 0, n_bytes = 0, n_names = 0;
  undo_names(&n_names);
  while (files != NULL) {
    struct file_state *f = files;
    if (f->newest != NULL) n_files++;
    size_t count = 0;
    for (struct undo *u = f->newest; u != NULL; u = u->prev) count++;
    /* With --seed: the oldest `keep` changes reached the disk; the change before them may be torn. */
    size_t keep = partial ? (size_t)(rng() % (count + 1)) : 0;
    size_t left = count - keep; /* changes to undo, newest first */
    for (struct undo *u = f->newest; u != NULL && left > 0; u = u->prev, left--) {
      n_records++;
      off_t to_size = u->old_size;
      if (partial && left == 1 && u->saved_len == 0) {
        struct stat now;
        if (fstat(f->fd, &now) == 0 && now.st_size > u->old_size) {
          to_size += (off_t)(rng() % (uint64_t)(now.st_size - u->old_size + 1)); /* torn append */
        }
      }
      if (u->saved_len > 0) {
        if (pwrite(f->fd, u->saved, u->saved_len, u->offset) != (ssize_t)u->saved_len) {
          fprintf(stderr, "powercut_fs: cannot restore bytes of inode %lu\n", (unsigned long)f->ino);
        }
        n_bytes += u->saved_len;
      }
      struct stat st;
      if (fstat(f->fd, &st) == 0 && st.st_size != to_size) {
        if (st.st_size > to_size) n_bytes += (unsigned long)(st.st_size - to_size);
        if (ftruncate(f->fd, to_size) != 0) {
          fprintf(stderr, "powercut_fs: cannot restore the size of inode %lu\n", (unsigned long)f->ino);
        }
      }
    }
    forget(f);
  }
  printf("powercut files=%lu records=%lu bytes=%lu names=%lu\n", n_files, n_records, n_bytes,
         n_names);
  fflush(stdout);
}

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->use_ino = 1;
  cfg->direct_io = 1;
  cfg->kernel_cache = 0;
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  return NULL;
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (fi != NULL) return fstat((int)fi->fh, st) == 0 ? 0 : -errno;
  FULL(p, path);
  return lstat(p, st) == 0 ? 0 : -errno;
}

static int pc_access(const char *path, int mask) {
  FULL(p, path);
  return access(p, mask) == 0 ? 0 : -errno;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  FULL(p, path);
  DIR *d = opendir(p);
  if (d == NULL) return -errno;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = e->d_ino;
    st.st_mode = (mode_t)(e->d_type << 12);
    if (fill(buf, e->d_name, &st, 0, 0)) break;
  }
  closedir(d);
  return 0;
}

static int pc_mkdir(const char *path, mode_t mode) {
  if (strcmp(path, CUT_NAME) == 0) {
    power_cut();
    return -EEXIST; /* nothing is created: the next mkdir cuts again */
  }
  FULL(p, path);
  if (mkdir(p, mode) != 0) return -errno;
  return strict_names ? note_name(NAME_MKDIR, path, NULL, NULL) : 0;
}

static int pc_unlink(const char *path) {
  FULL(p, path);
  if (!strict_names) return unlink(p) == 0 ? 0 : -errno;
  char *t = trash_name(); /* kept until the unlink is durable */
  if (t == NULL) return -ENOMEM;
  if (rename(p, t) != 0) {
    int e = errno;
    free(t);
    return -e;
  }
  return note_name(NAME_UNLINK, path, NULL, t);
}

static int pc_rmdir(const char *path) {
  FULL(p, path);
  if (rmdir(p) != 0) return -errno;
  return strict_names ? note_name(NAME_RMDIR, path, NULL, NULL) : 0;
}

static int pc_rename(const char *from, const char *to, unsigned int flags) {
  if (flags != 0) return -EINVAL;
  FULL(a, from);
  FULL(b, to);
  if (!strict_names) return rename(a, b) == 0 ? 0 : -errno;
  char *t = NULL;
  struct stat st;
  if (lstat(b, &st) == 0 && !S_ISDIR(st.st_mode)) {
    t = trash_name(); /* the replaced target, kept until the rename is durable */
    if (t == NULL) return -ENOMEM;
    if (link(b, t) != 0) {
      int e = errno;
      free(t);
      return -e;
    }
  }
  if (rename(a, b) != 0) {
    int e = errno;
    if (t != NULL) unlink(t);
    free(t);
    return -e;
  }
  return note_name(NAME_RENAME, from, to, t);
}

static int pc_link(const char *from, const char *to) {
  FULL(a, from);
  FULL(b, to);
  if (link(a, b) != 0) return -errno;
  return strict_names ? note_name(NAME_CREATE, to, NULL, NULL) : 0;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  if (fi != NULL) return fchmod((int)fi->fh, mode) == 0 ? 0 : -errno;
  FULL(p, path);
  return chmod(p, mode) == 0 ? 0 : -errno;
}

static int pc_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  if (fi != NULL) return futimens((int)fi->fh, tv) == 0 ? 0 : -errno;
  FULL(p, path);
  return utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

/* O_APPEND is left to the kernel, which sends each append at the file's end. */
static int open_flags(int flags) { return flags & ~O_APPEND; }

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  FULL(p, path);
  struct stat st;
  int existed = lstat(p, &st) == 0;
  int fd = open(p, open_flags(fi->flags), mode);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return strict_names && !existed ? note_name(NAME_CREATE, path, NULL, NULL) : 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
  FULL(p, path);
  int flags = open_flags(fi->flags);
  if (flags & O_TRUNC) {
    /* A truncating open changes the file: undoable like ftruncate. */
    int fd = open(p, flags & ~O_TRUNC);
    if (fd < 0) return -errno;
    struct stat st;
    int e = fstat(fd, &st) == 0 ? remember(fd, 0, (size_t)st.st_size) : -errno;
    if (e == 0 && ftruncate(fd, 0) != 0) e = -errno;
    if (e != 0) {
      close(fd);
      return e;
    }
    fi->fh = (uint64_t)fd;
    return 0;
  }
  int fd = open(p, flags);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int pc_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  ssize_t n = pread((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  (void)path;
  int fd = (int)fi->fh;
  int e = remember(fd, off, size);
  if (e != 0) return e;
  ssize_t n = pwrite(fd, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  int fd = fi != NULL ? (int)fi->fh : -1;
  int own = -1;
  if (fd < 0) {
    FULL(p, path);
    own = fd = open(p, O_RDWR);
    if (fd < 0) return -errno;
  }
  struct stat st;
  int e = fstat(fd, &st) == 0 ? 0 : -errno;
  /* Shrinking loses the tail: keep it. Growing adds zeros: the old size is enough. */
  if (e == 0) e = size < st.st_size ? remember(fd, size, (size_t)(st.st_size - size)) : remember(fd, st.st_size, 0);
  if (e == 0 && ftruncate(fd, size) != 0) e = -errno;
  if (own >= 0) close(own);
  return e;
}

static int pc_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  (void)path;
  int fd = (int)fi->fh;
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE) return -EOPNOTSUPP;
  if (mode == 0) {
    int e = remember(fd, off, 0); /* may grow the file: its old size comes back */
    if (e != 0) return e;
  }
  return fallocate(fd, mode, off, len) == 0 ? 0 : -errno;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  int fd = (int)fi->fh;
  if ((datasync ? fdatasync(fd) : fsync(fd)) != 0) return -errno;
  struct file_state *f = state_of(fd, 0);
  if (f != NULL) forget(f); /* everything written before this fsync is durable */
  return 0;
}

static int pc_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  return 0; /* close is not a sync */
}

static int pc_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh);
  return 0;
}

static int pc_statfs(const char *path, struct statvfs *st) {
  FULL(p, path);
  return statvfs(p, st) == 0 ? 0 : -errno;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
  (void)fi;
  FULL(p, path);
  DIR *d = opendir(p);
  if (d == NULL) return -errno;
  closedir(d);
  return 0;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)datasync;
  (void)fi;
  if (strict_names) names_synced(path);
  return 0;
}

static const struct fuse_operations ops = {
    .init = pc_init,
    .getattr = pc_getattr,
    .access = pc_access,
    .readdir = pc_readdir,
    .opendir = pc_opendir,
    .fsyncdir = pc_fsyncdir,
    .mkdir = pc_mkdir,
    .unlink = pc_unlink,
    .rmdir = pc_rmdir,
    .rename = pc_rename,
    .link = pc_link,
    .chmod = pc_chmod,
    .utimens = pc_utimens,
    .create = pc_create,
    .open = pc_open,
    .read = pc_read,
    .write = pc_write,
    .truncate = pc_truncate,
    .fallocate = pc_fallocate,
    .fsync = pc_fsync,
    .flush = pc_flush,
    .release = pc_release,
    .statfs = pc_statfs,
};

int main(int argc, char *argv[]) {
  int bad = argc < 3;
  for (int i = 3; i < argc && !bad; i++) {
    if (strcmp(argv[i], "--names") == 0) {
      strict_names = 1;
    } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      char *end;
      unsigned long long seed = strtoull(argv[++i], &end, 10);
      bad = *end != '\0';
      partial = 1;
      rng_state = seed * 0x9E3779B97F4A7C15ULL + 1; /* never 0 */
    } else {
      bad = 1;
    }
  }
  if (bad) {
    fprintf(stderr, "usage: powercut_fs BACKING_DIR MOUNT_POINT [--names] [--seed N]\n");
    return 2;
  }
  if (realpath(argv[1], backing) == NULL) {
    fprintf(stderr, "powercut_fs: cannot use backing directory %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  if (strlen(backing) + 7 > sizeof trash - 32) {
    fprintf(stderr, "powercut_fs: backing directory path too long\n");
    return 2;
  }
  memcpy(trash, backing, strlen(backing));
  memcpy(trash + strlen(backing), ".trash", 7);
  if (strict_names && mkdir(trash, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "powercut_fs: cannot make %s: %s\n", trash, strerror(errno));
    return 2;
  }
  char *fuse_argv[] = {argv[0], "-f", "-s", "-o", "default_permissions", argv[2], NULL};
  return fuse_main(6, fuse_argv, &ops, NULL);
}
