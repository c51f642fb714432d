// The shared-memory ABI between the trap platform's stub code (trap_stub.S,
// running inside every stub process, in a SIGSYS/SIGSEGV/... handler) and the
// router (trap_platform.cc). Included by both; plain constants only.
//
// Region layout (one per platform, at the same address in the router and in
// every stub):
//   +0x0000  code page (r-x): trap_stub.S, copied from the router binary
//   +0x1000  filter page (r--): struct sock_fprog, then the stub's filter
//   +0x10000 shared area 0: globals (memfd, MAP_SHARED, rw)
//   +0x20000 shared area 1..N: one per stub thread: slot page, then its
//            signal stack (the rest of the 64 KiB)
//   then, in stubs only: the host's [vvar]/[vvar_vclock]/[vdso] block,
//            moved there (mremap) by the forked child before it boots
// Everything in the shared areas is writable by the application (it shares
// the address space with the handler): the router treats it as hostile.
#pragma once

#define BH_TRAP_AREA_SHIFT 16
#define BH_TRAP_AREA_SIZE 0x10000
#define BH_TRAP_HEADER_SIZE 0x10000
#define BH_TRAP_CODE_OFFSET 0x0
#define BH_TRAP_FILTER_OFFSET 0x1000
#define BH_TRAP_SHARED_OFFSET 0x10000
#define BH_TRAP_SLOT_PAGE 0x1000

// Slot (at the base of a thread's area).
#define BH_SLOT_STATE 0          // u32, futex word
#define BH_SLOT_HANDLER_SLEEPING 4  // u32
#define BH_SLOT_SIGNO 8          // u32
#define BH_SLOT_UC 16            // u64: the handler frame's ucontext
#define BH_SLOT_CUR_FS 24        // u64: fs_base the thread has
#define BH_SLOT_CUR_GS 32        // u64
#define BH_SLOT_WANT_FS 40       // u64: fs_base the router wants
#define BH_SLOT_WANT_GS 48       // u64
#define BH_SLOT_CMD_NR 56        // u64
#define BH_SLOT_CMD_ARGS 64      // u64[6]
#define BH_SLOT_CMD_RET 112      // u64
#define BH_SLOT_SPIN 120         // u32: handler spin iterations before FUTEX_WAIT
#define BH_SLOT_SIGINFO 128      // 128 bytes
#define BH_SLOT_GREGS 256        // 23 x u64 (mcontext gregs, REG_R8 ... REG_CR2)
#define BH_SLOT_GREGS_SIZE 184
#define BH_SLOT_GREGS_RUN_SIZE 144  // R8 ... EFL: what RUN writes back
#define BH_SLOT_FAST 448         // u32: 1 = the thread waits in the fast entry, not in a signal frame
#define BH_SLOT_SELF 456         // u64: the slot's own address (the fast entry finds it through %gs)

// mcontext gregs indices, times 8 (REG_R8 ... REG_EFL).
#define BH_G_R8 (BH_SLOT_GREGS + 0 * 8)
#define BH_G_R9 (BH_SLOT_GREGS + 1 * 8)
#define BH_G_R10 (BH_SLOT_GREGS + 2 * 8)
#define BH_G_R11 (BH_SLOT_GREGS + 3 * 8)
#define BH_G_R12 (BH_SLOT_GREGS + 4 * 8)
#define BH_G_R13 (BH_SLOT_GREGS + 5 * 8)
#define BH_G_R14 (BH_SLOT_GREGS + 6 * 8)
#define BH_G_R15 (BH_SLOT_GREGS + 7 * 8)
#define BH_G_RDI (BH_SLOT_GREGS + 8 * 8)
#define BH_G_RSI (BH_SLOT_GREGS + 9 * 8)
#define BH_G_RBP (BH_SLOT_GREGS + 10 * 8)
#define BH_G_RBX (BH_SLOT_GREGS + 11 * 8)
#define BH_G_RDX (BH_SLOT_GREGS + 12 * 8)
#define BH_G_RAX (BH_SLOT_GREGS + 13 * 8)
#define BH_G_RCX (BH_SLOT_GREGS + 14 * 8)
#define BH_G_RSP (BH_SLOT_GREGS + 15 * 8)
#define BH_G_RIP (BH_SLOT_GREGS + 16 * 8)
#define BH_G_EFL (BH_SLOT_GREGS + 17 * 8)

// Slot states.
#define BH_STATE_NONE 0
#define BH_STATE_EVENT 1     // handler -> router: an event (or a new thread)
#define BH_STATE_RUN 2       // router -> handler: return to the application
#define BH_STATE_CMD 3       // router -> handler: run cmd_nr(cmd_args)
#define BH_STATE_CMD_DONE 4  // handler -> router: cmd_ret holds the result
#define BH_STATE_RUNNING 5   // handler: back in application code
#define BH_STATE_CONVERT 6   // router -> fast entry: trap (int3) into a real signal frame

// Globals (shared area 0).
#define BH_GLOBAL_ROUTER_SLEEPING 4 // u32: router blocks in poll: write eventfd
#define BH_GLOBAL_EVENTFD 8         // u64: the eventfd's number in the stub
#define BH_GLOBAL_ONE 16            // u64: 1, the eventfd write buffer
#define BH_GLOBAL_ROUTER_BUSY 32    // u32: the router waits on another service: do not spin
#define BH_GLOBAL_REGION_END 24     // u64: end of the region and the vDSO block after it (boot munmap)

// ucontext_t offsets (x86-64).
#define BH_UC_MCONTEXT 40
#define BH_UC_FPREGS_PTR (40 + 184)
#define BH_UC_SIGMASK 296

// The seccomp data tags: a trapped application system call, and a call made
// from the stub's own instruction that the stub filter does not allow.
#define BH_TRAP_SYSCALL_TAG 0xb3
#define BH_TRAP_REFUSED_TAG 0xb4
