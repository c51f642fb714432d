// The trap platform's stub code. Copied byte for byte into the code page of
// the platform's region (trap_abi.h) and run there, inside stub processes, at
// an address unknown at assembly time: position-independent, no relocations
// (every reference is rip-relative within this section or through the
// region's fixed layout), no stack beyond the thread's signal stack, no libc.
//
// Every system call the stub makes goes through the one `syscall`
// instruction at bh_trap_syscall: the stub's seccomp filter allows its short
// list only from there and traps every other system call of the process into
// bh_trap_handler (SIGSYS). See trap_platform.h for the protocol.
#include "services/syscall-router/platform/trap_abi.h"

#define SYS_write 1
#define SYS_rt_sigprocmask 14
#define SYS_rt_sigreturn 15
#define SYS_clone 56
#define SYS_getpid 39
#define SYS_munmap 11
#define SYS_sigaltstack 131
#define SYS_prctl 157
#define SYS_arch_prctl 158
#define SYS_gettid 186
#define SYS_futex 202
#define SYS_tgkill 234
#define SYS_seccomp 317
#define FUTEX_WAIT 0
#define SIGCHLD 17
#define SIGTRAP 5
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define PR_SET_PDEATHSIG 1
#define SIGKILL 9
#define SIG_SETMASK 2
#define TASK_SIZE_MAX 0x7ffffffff000

        .section .text.bulkhead_trap_stub,"ax",@progbits
        .balign 4096
        .globl bh_trap_stub_begin
        .hidden bh_trap_stub_begin
bh_trap_stub_begin:

// The one system call instruction. In: rax = nr, rdi, rsi, rdx, r10, r8, r9.
// Clobbers rcx, r11. A clone child comes out of here on its new stack, whose
// top word the parent set to bh_trap_child_entry.
        .globl bh_trap_syscall
        .hidden bh_trap_syscall
bh_trap_syscall:
        syscall
        ret

// sa_restorer of every handler: rt_sigreturn through the allowed instruction
// (jmp, not call: the frame must stay where the kernel put it).
        .globl bh_trap_restorer
        .hidden bh_trap_restorer
bh_trap_restorer:
        mov $SYS_rt_sigreturn, %eax
        jmp bh_trap_syscall

// Tell the router a slot changed state (called right after the xchg that
// published it, a full barrier): if the router sleeps in poll, write its
// eventfd; a spinning router sees the slot itself. Clobbers rax, rcx, rdx,
// rdi, rsi, r11, r13.
notify_router:
        lea bh_trap_stub_begin+BH_TRAP_SHARED_OFFSET(%rip), %r13
        mov BH_GLOBAL_ROUTER_SLEEPING(%r13), %eax
        test %eax, %eax
        jz 1f
        mov $SYS_write, %eax
        mov BH_GLOBAL_EVENTFD(%r13), %rdi
        lea BH_GLOBAL_ONE(%r13), %rsi
        mov $8, %edx
        call bh_trap_syscall
1:      ret

// The handler of SIGSYS (trapped system calls), SIGSEGV, SIGBUS, SIGFPE,
// SIGILL, SIGTRAP (faults) and SIGCHLD (the router's interrupt, and the
// first event of a new thread). All signals are blocked while it runs; it
// runs on the thread's signal stack, inside the thread's area, so the area
// (and the slot at its base) is rsp rounded down.
// In: edi = signo, rsi = siginfo, rdx = ucontext.
        .globl bh_trap_handler
        .hidden bh_trap_handler
bh_trap_handler:
        cld
        // A signal sent by a process (si_code <= 0: the router's interrupt,
        // kill, tgkill) that lands while the thread runs code of this page
        // with signals unblocked (the fast entry and its wait, a thread's
        // birth) is dropped: the thread is about to report to the router,
        // or already waits for it, which is what an interrupt is for, and
        // its slot must not be overwritten mid-report. One exception: in
        // fast_run the thread is already on its way back to the application
        // with the router's registers, so the signal is taken as if it had
        // landed there: the frame gets those registers (and fs/gs their
        // values) and the event goes out as usual. Signals the kernel raises
        // for the thread's own instruction (si_code > 0) are always handled.
        cmpl $0, 8(%rsi)
        jg 0f
        mov BH_UC_MCONTEXT+16*8(%rdx), %rax    // the interrupted rip
        lea bh_trap_stub_begin(%rip), %rcx
        sub %rcx, %rax
        cmp $4096, %rax
        jae 0f
        cmp $(fast_run - bh_trap_stub_begin), %rax
        jb 1f
        cmp $(fast_run_end - bh_trap_stub_begin), %rax
        jae 1f
        mov %rsp, %rbx
        and $-BH_TRAP_AREA_SIZE, %rbx          // rbx = slot
        mov %rdx, %r12
        mov %edi, %r14d
        mov %rsi, %r15
        lea BH_SLOT_GREGS(%rbx), %rsi
        lea BH_UC_MCONTEXT(%r12), %rdi
        mov $BH_SLOT_GREGS_RUN_SIZE, %ecx
        rep movsb
        call apply_fs_gs
        mov %r14d, %edi
        mov %r15, %rsi
        mov %r12, %rdx
        jmp 0f
1:      ret                                    // -> bh_trap_restorer
0:      mov %rsp, %rbx
        and $-BH_TRAP_AREA_SIZE, %rbx          // rbx = slot
        mov %rdx, %r12                         // r12 = ucontext
        movl $0, BH_SLOT_FAST(%rbx)            // this event has a real frame
        mov %edi, BH_SLOT_SIGNO(%rbx)
        mov %rdx, BH_SLOT_UC(%rbx)
        lea BH_SLOT_SIGINFO(%rbx), %rdi        // siginfo -> slot
        mov $128, %ecx
        rep movsb
        lea BH_UC_MCONTEXT(%r12), %rsi         // registers -> slot
        lea BH_SLOT_GREGS(%rbx), %rdi
        mov $BH_SLOT_GREGS_SIZE, %ecx
        rep movsb
        mov $BH_STATE_EVENT, %eax
        xchg %eax, BH_SLOT_STATE(%rbx)         // publish (full barrier)
        call notify_router

wait_loop:
        lea bh_trap_stub_begin+BH_TRAP_SHARED_OFFSET(%rip), %rbp
        mov BH_SLOT_SPIN(%rbx), %r14d
        test %r14d, %r14d
        jnz spin
        mov $1, %r14d
        jmp spin
wait_loop_long:
        // After a command: the router usually sends the next one soon (a
        // fork's mappings, an exec's segments, with copying in between):
        // spin ten times longer before sleeping.
        lea bh_trap_stub_begin+BH_TRAP_SHARED_OFFSET(%rip), %rbp
        mov BH_SLOT_SPIN(%rbx), %r14d
        imul $10, %r14d, %r14d
        test %r14d, %r14d
        jnz spin
        mov $1, %r14d
spin:
        mov BH_SLOT_STATE(%rbx), %eax
        cmp $BH_STATE_RUN, %eax
        je do_run
        cmp $BH_STATE_CMD, %eax
        je do_cmd
        cmp $BH_STATE_CONVERT, %eax
        je do_convert
        cmpl $0, BH_GLOBAL_ROUTER_BUSY(%rbp)  // the router waits on another service:
        jne 1f                                 // its answer is far away, sleep now
        pause
        dec %r14d
        jnz spin
1:
        // Sleep on the state word. The router stores the state, then reads
        // handler_sleeping; we store handler_sleeping, then read the state
        // (both with a full barrier): one of us sees the other.
        movl $1, BH_SLOT_HANDLER_SLEEPING(%rbx)
        mfence
        mov BH_SLOT_STATE(%rbx), %edx
        cmp $BH_STATE_RUN, %edx
        je 2f
        cmp $BH_STATE_CMD, %edx
        je 2f
        cmp $BH_STATE_CONVERT, %edx
        je 2f
        lea BH_SLOT_STATE(%rbx), %rdi
        mov $FUTEX_WAIT, %esi                 // shared: the router is another process
        xor %r10d, %r10d
        mov $SYS_futex, %eax
        call bh_trap_syscall
2:      movl $0, BH_SLOT_HANDLER_SLEEPING(%rbx)
        jmp wait_loop

do_cmd:
        mov BH_SLOT_CMD_NR(%rbx), %r15
        mov BH_SLOT_CMD_ARGS+0(%rbx), %rdi
        mov BH_SLOT_CMD_ARGS+8(%rbx), %rsi
        mov BH_SLOT_CMD_ARGS+16(%rbx), %rdx
        mov BH_SLOT_CMD_ARGS+24(%rbx), %r10
        mov BH_SLOT_CMD_ARGS+32(%rbx), %r8
        mov BH_SLOT_CMD_ARGS+40(%rbx), %r9
        cmp $SYS_clone, %r15
        jne 3f
        // clone: the child leaves bh_trap_syscall by `ret` on its new stack
        // (rsi, the top of its own area): put the child entry there.
        lea bh_trap_child_entry(%rip), %rcx
        sub $8, %rsi
        mov %rcx, (%rsi)
3:      mov %r15, %rax
        call bh_trap_syscall
        mov %rax, BH_SLOT_CMD_RET(%rbx)
        mov $BH_STATE_CMD_DONE, %eax
        xchg %eax, BH_SLOT_STATE(%rbx)
        call notify_router
        jmp wait_loop_long

do_run:
        cmpl $0, BH_SLOT_FAST(%rbx)
        jne fast_run
        // Registers R8 ... EFL back into the frame; CS/SS and the rest stay
        // the kernel's. The kernel sanitizes EFLAGS and the selectors on
        // rt_sigreturn.
        lea BH_SLOT_GREGS(%rbx), %rsi
        lea BH_UC_MCONTEXT(%r12), %rdi
        mov $BH_SLOT_GREGS_RUN_SIZE, %ecx
        rep movsb
        movq $0, BH_UC_SIGMASK(%r12)          // application code: nothing blocked
        call apply_fs_gs
        movl $BH_STATE_RUNNING, BH_SLOT_STATE(%rbx)
        ret                                    // -> bh_trap_restorer

// fs_base and gs_base as the router wants them (arch_prctl only on a change).
apply_fs_gs:
        mov BH_SLOT_WANT_FS(%rbx), %rsi
        cmp BH_SLOT_CUR_FS(%rbx), %rsi
        je 4f
        mov %rsi, BH_SLOT_CUR_FS(%rbx)
        mov $ARCH_SET_FS, %edi
        mov $SYS_arch_prctl, %eax
        call bh_trap_syscall
4:      mov BH_SLOT_WANT_GS(%rbx), %rsi
        cmp BH_SLOT_CUR_GS(%rbx), %rsi
        je 5f
        mov %rsi, BH_SLOT_CUR_GS(%rbx)
        mov $ARCH_SET_GS, %edi
        mov $SYS_arch_prctl, %eax
        call bh_trap_syscall
5:      ret

// The fast entry: a patched system call site (the router rewrote
// `mov $nr, %eax; syscall` into a jump through a per-site thunk) comes here
// with eax = nr and rcx = the address after the site; every other register
// is the application's. No signal, no kernel entry: the registers go into the
// slot (found through %gs, which the router keeps at the slot's address for
// threads whose application never set its own), the thread reports EVENT and
// waits in the same loop as the handler, on its signal stack (unused while
// application code runs). The application stack is never touched.
        .globl bh_trap_fast
        .hidden bh_trap_fast
bh_trap_fast:
        mov %rsp, %gs:BH_G_RSP
        mov %gs:BH_SLOT_SELF, %rsp
        lea BH_TRAP_AREA_SIZE(%rsp), %rsp      // (lea: the flags are still the application's)
        pushfq
        mov %r8, %gs:BH_G_R8
        mov %r9, %gs:BH_G_R9
        mov %r10, %gs:BH_G_R10
        mov %r12, %gs:BH_G_R12
        mov %r13, %gs:BH_G_R13
        mov %r14, %gs:BH_G_R14
        mov %r15, %gs:BH_G_R15
        mov %rdi, %gs:BH_G_RDI
        mov %rsi, %gs:BH_G_RSI
        mov %rbp, %gs:BH_G_RBP
        mov %rbx, %gs:BH_G_RBX
        mov %rdx, %gs:BH_G_RDX
        mov %rax, %gs:BH_G_RAX
        mov %rcx, %gs:BH_G_RCX                 // as the syscall instruction: rcx = rip,
        mov %rcx, %gs:BH_G_RIP
        pop %r11                               // r11 = rflags
        mov %r11, %gs:BH_G_R11
        mov %r11, %gs:BH_G_EFL
        mov %gs:BH_SLOT_SELF, %rbx
        cld
        movl $1, BH_SLOT_FAST(%rbx)
        mov $BH_STATE_EVENT, %eax
        xchg %eax, BH_SLOT_STATE(%rbx)         // publish (full barrier)
        call notify_router
        jmp wait_loop

// RUN for a thread waiting in the fast entry: every general register, the
// flags and rip straight from the slot. The router only sends it while the
// thread's gs_base is its slot (else it converts first).
fast_run:
        call apply_fs_gs
        movl $0, BH_SLOT_FAST(%rbx)
        pushq BH_G_EFL(%rbx)
        mov BH_G_R8(%rbx), %r8
        mov BH_G_R9(%rbx), %r9
        mov BH_G_R10(%rbx), %r10
        mov BH_G_R11(%rbx), %r11
        mov BH_G_R12(%rbx), %r12
        mov BH_G_R13(%rbx), %r13
        mov BH_G_R14(%rbx), %r14
        mov BH_G_R15(%rbx), %r15
        mov BH_G_RDI(%rbx), %rdi
        mov BH_G_RSI(%rbx), %rsi
        mov BH_G_RBP(%rbx), %rbp
        mov BH_G_RDX(%rbx), %rdx
        mov BH_G_RAX(%rbx), %rax
        mov BH_G_RCX(%rbx), %rcx
        movl $BH_STATE_RUNNING, BH_SLOT_STATE(%rbx)
        popfq
        mov %gs:BH_G_RBX, %rbx
        mov %gs:BH_G_RSP, %rsp
        jmp *%gs:BH_G_RIP
fast_run_end:

// CONVERT: the router needs this thread in a real signal frame (its FP
// state, or a return the fast path cannot make). A trap from here: the
// handler runs nested below on the same signal stack, reports a SIGTRAP
// EVENT and waits as usual; its RUN replaces every register, so this
// frame's are irrelevant and the code after the trap never runs.
do_convert:
        int3
        ud2

// A new stub thread or process (the child of a commanded clone, or the
// first thread after bh_trap_boot). rsp = the top of its area. Sets its
// signal stack, then traps (int3, SIGTRAP): the handler's first event tells
// the router the thread is ready, and its frame is what later RUNs fill in.
        .globl bh_trap_child_entry
        .hidden bh_trap_child_entry
bh_trap_child_entry:
        lea -1(%rsp), %rbx
        and $-BH_TRAP_AREA_SIZE, %rbx          // rbx = slot
        sub $32, %rsp                          // stack_t {ss_sp, ss_flags, ss_size}
        lea BH_TRAP_SLOT_PAGE(%rbx), %rax
        mov %rax, 0(%rsp)
        movq $0, 8(%rsp)
        movq $(BH_TRAP_AREA_SIZE - BH_TRAP_SLOT_PAGE), 16(%rsp)
        mov %rsp, %rdi
        xor %esi, %esi
        mov $SYS_sigaltstack, %eax
        call bh_trap_syscall
        test %rax, %rax
        jnz die
        mov $PR_SET_PDEATHSIG, %edi
        mov $SIGKILL, %esi
        mov $SYS_prctl, %eax
        call bh_trap_syscall
        movq $~(1 << (SIGTRAP - 1)), 0(%rsp)  // block all but SIGTRAP
        mov $SIG_SETMASK, %edi
        mov %rsp, %rsi
        xor %edx, %edx
        mov $8, %r10d
        mov $SYS_rt_sigprocmask, %eax
        call bh_trap_syscall
        int3                                   // -> the handler: SIGTRAP, the birth event
        // The handler never comes back here (RUN returns into application
        // code). Anything else is a bug: die.
die:    ud2

// The first thread of a stub made by the router: forked router code jumps
// here with rsp = the top of the thread's area. Unmaps everything but the
// region (whose end includes the vDSO block the forked code moved there),
// loads the filter, becomes a stub thread.
        .globl bh_trap_boot
        .hidden bh_trap_boot
bh_trap_boot:
        lea bh_trap_stub_begin+BH_TRAP_SHARED_OFFSET(%rip), %r13
        xor %edi, %edi                         // [0, region)
        lea bh_trap_stub_begin(%rip), %rsi
        mov $SYS_munmap, %eax
        call bh_trap_syscall
        test %rax, %rax
        jnz die
        mov BH_GLOBAL_REGION_END(%r13), %rdi   // [region end, TASK_SIZE_MAX)
7:      mov $TASK_SIZE_MAX, %rsi
        sub %rdi, %rsi
        mov $SYS_munmap, %eax
        call bh_trap_syscall
        test %rax, %rax
        jnz die
        mov $1, %edi                           // SECCOMP_SET_MODE_FILTER
        xor %esi, %esi
        lea bh_trap_stub_begin+BH_TRAP_FILTER_OFFSET(%rip), %rdx
        mov $SYS_seccomp, %eax
        call bh_trap_syscall
        test %rax, %rax
        jnz die
        jmp bh_trap_child_entry

        .globl bh_trap_stub_end
        .hidden bh_trap_stub_end
bh_trap_stub_end:
        .section .note.GNU-stack,"",@progbits
