/* x86-64 System V context switch.
 *
 * void* gort_ctx_switch(void** save_sp, void* new_sp, void* arg)
 *   Saves the callee-saved registers, MXCSR and the x87 control word on the current
 *   stack, stores rsp in *save_sp, switches to new_sp and restores the same set
 *   from there. Returns arg in the resumed context (rax; also rdi, which is the
 *   first argument when the resumed context is a fresh one).
 *
 * The frame layout is in context_layout.h. Two choices, each measured with
 * `gort-bench stack` and the scheduler's yield (the figures:
 * bench/results/2026-12-04-history-from-docs.txt):
 *  - return with `ret` when the resumed context was switched out from the
 *    same call site as ours (every goroutine-to-goroutine switch goes through
 *    the scheduler's gogo), else through `pop; jmp`. The call into this function pushed
 *    a return-stack-buffer entry: `ret` consumes it and is predicted right when
 *    the sites match, while `jmp` leaves it behind, so every later return of
 *    the resumed goroutine would be predicted one frame off.
 *    Between different sites (a thread and a fiber ping-ponging, g0 and a
 *    goroutine) `ret` always mispredicts and `jmp` does not (docs/kernel.md,
 *    "Context switch");
 *  - always ldmxcsr, but fldcw only when the x87 control word differs. The CW
 *    compare reads back the 2-byte fnstcw store, which forwards; reading back
 *    the stmxcsr store does not forward on this CPU and stalls, so skipping
 *    ldmxcsr the same way (or comparing both as one word) costs more than
 *    always restoring it. */
#include "context_layout.h"

        .text
        .globl  gort_ctx_switch
        .type   gort_ctx_switch, @function
        .p2align 4
gort_ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        leaq    -8(%rsp), %rsp
        stmxcsr GORT_CTX_FPU(%rsp)
        fnstcw  GORT_CTX_FPU+4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsp, %rdi
        movq    %rsi, %rsp
        ldmxcsr GORT_CTX_FPU(%rsp)
        movzwl  GORT_CTX_FPU+4(%rsp), %eax
        cmpw    %ax, GORT_CTX_FPU+4(%rdi)
        jne     2f
1:
        leaq    8(%rsp), %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax
        movq    (%rsp), %r8
        cmpq    %r8, GORT_CTX_PC(%rdi)
        jne     3f
        movq    %rdx, %rdi
        ret
3:
        leaq    8(%rsp), %rsp
        movq    %rdx, %rdi
        jmp     *%r8
2:
        fldcw   GORT_CTX_FPU+4(%rsp)
        jmp     1b
        .cfi_endproc
        .size   gort_ctx_switch, .-gort_ctx_switch

/* First instructions of a fresh context: call r12(r13). The entry function never
 * returns (it ends by switching away for good); if it does, trap. rip is marked
 * undefined so unwinders (exceptions, backtraces) stop here. */
        .globl  gort_ctx_trampoline
        .type   gort_ctx_trampoline, @function
        .p2align 4
gort_ctx_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r13, %rdi
        callq   *%r12
        ud2
        .cfi_endproc
        .size   gort_ctx_trampoline, .-gort_ctx_trampoline

        .section .note.GNU-stack,"",@progbits
