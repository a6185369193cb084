/* x86-64 System V context switch.
 *
 * void* gort_ctx_switch(void** save_sp, void* new_sp, void* arg)
 *   Saves the callee-saved registers, MXCSR and the x87 control word on the current
 *   stack, stores rsp in *save_sp, switches to new_sp and restores the same set
 *   from there. Returns arg in the resumed context (rax; also rdi, which is the
 *   first argument when the resumed context is a fresh one).
 *
 * The frame layout is in context_layout.h. Two choices measured on our machines
 * (KERNEL.md): returning through `pop; jmp` rather than `ret` (2.6 vs 7.6 ns: a
 * `ret` to a different stack always mispredicts the return-stack buffer), and
 * reloading MXCSR / the x87 control word only when the resumed context's values
 * differ from the current ones: ldmxcsr and fldcw are the slow part of a switch
 * (10.9 ns with them against 7.6 without), and they almost never differ. */
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
        pushq   $0
        stmxcsr GORT_CTX_FPU(%rsp)
        fnstcw  GORT_CTX_FPU+4(%rsp)
        movq    GORT_CTX_FPU(%rsp), %r8
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        cmpq    GORT_CTX_FPU(%rsp), %r8
        jne     2f
1:
        movq    GORT_CTX_R15(%rsp), %r15
        movq    GORT_CTX_R14(%rsp), %r14
        movq    GORT_CTX_R13(%rsp), %r13
        movq    GORT_CTX_R12(%rsp), %r12
        movq    GORT_CTX_RBX(%rsp), %rbx
        movq    GORT_CTX_RBP(%rsp), %rbp
        movq    GORT_CTX_PC(%rsp), %r8
        leaq    GORT_CTX_SIZE(%rsp), %rsp
        movq    %rdx, %rax
        movq    %rdx, %rdi
        jmp     *%r8
2:
        ldmxcsr GORT_CTX_FPU(%rsp)
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
