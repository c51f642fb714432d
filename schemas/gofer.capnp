# syscall-router <-> fs-gofer: files. Fields are only ever added.
@0xa47d5ca2a5817140;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("bulkhead::schema::gofer");

using Common = import "common.capnp";

struct Request {
  union {
    hello @0 :Common.Hello;
    ping @1 :Common.Ping;
    stats @2 :Common.StatsRequest;
    open @3 :Open;
    pread @4 :Pread;
    fstat @5 :Handle;
    stat @6 :Stat;
    getdents @7 :Getdents;
    readlink @8 :Path;
    close @9 :Handle;
    pwrite @10 :Pwrite;       # the bytes are in the request's bulk area
    truncate @11 :Truncate;
    fallocate @12 :Fallocate;
    fsync @13 :Fsync;
    mknod @14 :Mknod;         # mkdir, mknod (FIFO, socket, regular)
    unlink @15 :Unlink;       # answered with the stat of what was removed
    rename @16 :Rename;
    link @17 :Link;
    symlink @18 :Symlink;
    setattr @19 :SetAttr;     # chmod, chown, utimensat
    statfs @20 :Target;
    getxattr @21 :Xattr;
    setxattr @22 :Xattr;      # the value is in the request's bulk area
    listxattr @23 :Xattr;
    removexattr @24 :Xattr;
    access @25 :Access;
    seek @26 :Seek;           # SEEK_DATA, SEEK_HOLE (the router keeps offsets)
  }
}

struct Response {
  union {
    error @0 :Common.Error;
    hello @1 :Common.HelloReply;
    pong @2 :Common.Pong;
    stats @3 :Common.ServiceStats;
    opened @4 :Opened;
    read @5 :UInt32;         # pread: bytes read; the bytes are in the response's bulk area
    stat @6 :Common.Stat;
    dirents @7 :Dirents;
    target @8 :Text;         # readlink
    ok @9 :Void;
    written @10 :Written;
    sizeIs @11 :Int64;        # pwrite with ifSize: not written, the file's size is this
    statfs @12 :Statfs;
    xattr @13 :UInt32;        # getxattr, listxattr: bytes, in the response's bulk area
    offset @14 :Int64;        # seek
  }
}

# Paths are absolute inside the sandbox ("/etc/passwd"); the gofer resolves
# them inside the sandbox root and never outside it.
struct Path {
  path @0 :Text;
}

struct Open {
  path @0 :Text;
  flags @1 :UInt32;         # Linux O_* flags
  mode @2 :UInt32;
}

struct Opened {
  handle @0 :UInt64;
  stat @1 :Common.Stat;
}

struct Handle {
  handle @0 :UInt64;
}

struct Pread {
  handle @0 :UInt64;
  offset @1 :Int64;
  count @2 :UInt32;         # at most half the response bulk area
}

struct Stat {
  path @0 :Text;
  followLinks @1 :Bool;
}

struct Getdents {
  handle @0 :UInt64;
  count @1 :UInt32;         # buffer size the application offered
}

# linux_dirent64 records, packed as getdents64 returns them, in the bulk area.
struct Dirents {
  bytes @0 :UInt32;
}

struct Pwrite {
  handle @0 :UInt64;
  offset @1 :Int64;         # ignored with append
  append @2 :Bool;          # write at the end of the file
  ifSize @3 :Int64 = -1;    # append: only if the file's size is this (-1: always)
}

struct Written {
  count @0 :UInt32;
  size @1 :Int64;           # the file's size after the write
  offset @2 :Int64;         # where the bytes went
}

# truncate(2) by path when handle is 0, else ftruncate(2).
struct Truncate {
  handle @0 :UInt64;
  path @1 :Text;
  length @2 :Int64;
}

struct Fallocate {
  handle @0 :UInt64;
  mode @1 :UInt32;
  offset @2 :Int64;
  length @3 :Int64;
}

struct Fsync {
  handle @0 :UInt64;
  dataOnly @1 :Bool;
}

struct Mknod {
  path @0 :Text;
  mode @1 :UInt32;          # S_IFDIR: mkdir; S_IFIFO, S_IFSOCK, S_IFREG: mknod
  dev @2 :UInt64;
}

struct Unlink {
  path @0 :Text;
  directory @1 :Bool;       # rmdir
}

struct Rename {
  from @0 :Text;
  to @1 :Text;
  flags @2 :UInt32;         # RENAME_NOREPLACE, RENAME_EXCHANGE
}

struct Link {
  from @0 :Text;
  to @1 :Text;
  follow @2 :Bool;          # AT_SYMLINK_FOLLOW
  fromHandle @3 :UInt64;    # != 0: link this open file (linkat AT_EMPTY_PATH; an O_TMPFILE)
}

struct Symlink {
  target @0 :Text;
  path @1 :Text;
}

# A file named by path (following symlinks or not) or by an open handle
# (handle != 0).
struct Target {
  handle @0 :UInt64;
  path @1 :Text;
  follow @2 :Bool;
}

struct SetAttr {
  target @0 :Target;
  setMode @1 :Bool;
  mode @2 :UInt32;
  setOwner @3 :Bool;
  uid @4 :UInt32;           # 0xffffffff: unchanged
  gid @5 :UInt32;
  setTimes @6 :Bool;
  atime @7 :Common.Timespec;  # nsec may be UTIME_NOW or UTIME_OMIT
  mtime @8 :Common.Timespec;
}

struct Statfs {
  type @0 :Int64;
  bsize @1 :Int64;
  blocks @2 :UInt64;
  bfree @3 :UInt64;
  bavail @4 :UInt64;
  files @5 :UInt64;
  ffree @6 :UInt64;
  namelen @7 :Int64;
  frsize @8 :Int64;
  flags @9 :Int64;
}

struct Xattr {
  target @0 :Target;
  name @1 :Text;
  size @2 :UInt32;          # get, list: the application's buffer size (0: ask the size)
  flags @3 :UInt32;         # set: XATTR_CREATE, XATTR_REPLACE
}

struct Access {
  path @0 :Text;
  mode @1 :UInt32;          # F_OK, R_OK, W_OK, X_OK
  follow @2 :Bool;
}

struct Seek {
  handle @0 :UInt64;
  offset @1 :Int64;
  whence @2 :UInt32;
}
