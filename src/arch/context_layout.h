/* Layout of a switched-out context, shared by context_x86_64.S and context.hpp
 * (which static_asserts it). gort_ctx_switch pushes, from the top of the stack:
 * the return address, rbp, rbx, r12, r13, r14, r15, then one word holding
 * MXCSR (low 4 bytes) and the x87 control word (next 2 bytes, the rest zero),
 * and saves rsp, which then points at that word. */
#ifndef GORT_ARCH_CONTEXT_LAYOUT_H
#define GORT_ARCH_CONTEXT_LAYOUT_H

#define GORT_CTX_FPU 0   /* MXCSR | x87 CW << 32 */
#define GORT_CTX_R15 8
#define GORT_CTX_R14 16
#define GORT_CTX_R13 24  /* fresh context: argument for the entry function */
#define GORT_CTX_R12 32  /* fresh context: entry function */
#define GORT_CTX_RBX 40
#define GORT_CTX_RBP 48  /* fresh context: 0, ends frame-pointer backtraces */
#define GORT_CTX_PC 56   /* resumed with ret when saved at the resuming call site, else pop + jmp */
#define GORT_CTX_SIZE 64

#endif
