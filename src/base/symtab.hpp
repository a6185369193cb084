// Symbol and line tables of the loaded ELF objects, for the reports that name
// every frame: the stack-overflow report, the panic report and SIGQUIT dumps.
//
// dladdr sees only the dynamic symbol table, so static functions, lambdas and
// functions in anonymous namespaces (most frames of a real program) had no
// name. symtab_init() maps each object's file read-only at start-up and indexes
// its full symbol table (.symtab, or .dynsym where it was stripped) and the
// sequences of its DWARF line programs (.debug_line). symtab_lookup() then only
// reads that memory: no allocation, no locks, no system calls, so the fault
// handler may call it on its signal stack.
#pragma once

#include <cstdint>

namespace gort::rt {

// SymFrame is what symtab_lookup() knows about an address. The strings point
// into memory that lives as long as the process.
struct SymFrame {
  const char* module = nullptr;  // the object's path (argv[0] for the program)
  std::uintptr_t bias = 0;       // its load bias: pc - bias is the link-time address
  const char* func = nullptr;    // the covering function's symbol (mangled); nullptr if none
  std::uintptr_t func_pc = 0;    // that function's first instruction
  const char* dir = nullptr;     // the source file's directory; nullptr if unknown or not needed
  const char* file = nullptr;    // the source file; nullptr without line information
  std::uint32_t line = 0;        // its line (0: the compiler's "no line")
};

// symtab_init() maps and indexes every ELF object loaded now; objects loaded
// later are not indexed. Runs once (later calls return at once); allocates, so
// never from a signal handler. An object it cannot read is left out, and
// nothing here fails start-up.
void symtab_init();

// symtab_lookup() fills out for the instruction at pc (for a return address,
// pass the address before it). False if no indexed object contains pc.
// Async-signal-safe.
bool symtab_lookup(std::uintptr_t pc, SymFrame& out);

}  // namespace gort::rt
