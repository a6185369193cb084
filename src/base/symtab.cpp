// The symbolizer behind the reports (see symtab.hpp).
//
// symtab_lookup() runs in the fault handler, so everything it reaches is
// async-signal-safe: it reads the table that symtab_init() published and the
// files that it mapped, and nothing else. The work that needs allocation or
// files is done once at start-up: mapping each object's file (its pages come
// in only when read), copying the function symbols of .symtab into an array
// sorted by address (a stripped object's dynamic symbols are searched where
// they lie), and an index of address ranges -> line program, taken from
// .debug_aranges (a few KiB: each compilation unit's ranges and its
// .debug_info entry, whose DW_AT_stmt_list names its line program). A lookup
// is then two binary searches, a read of the unit's first entry, and the run
// of its line program: 75 us on average over a test binary's functions, up to
// about 1 ms in its largest unit (160 KiB of line program), measured on a
// loaded machine.
//
// Running every line program at start-up instead would give exact sequences,
// but costs about 3 ms per MiB of .debug_line (measured on a test binary), and
// large programs have tens of MiB; it remains the fallback for an object
// without .debug_aranges (clang emits none by default).
//
// Every read of file data is bounds-checked (Reader), so a truncated, corrupt
// or unexpected table ends a lookup with less information, never with a fault
// inside the fault handler.
#include "base/symtab.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace gort::rt {

namespace {

// The DWARF 5 constants the line tables use (DWARF 5 standard, section 7.22).
constexpr unsigned DW_LNS_copy = 1;
constexpr unsigned DW_LNS_advance_pc = 2;
constexpr unsigned DW_LNS_advance_line = 3;
constexpr unsigned DW_LNS_set_file = 4;
constexpr unsigned DW_LNS_const_add_pc = 8;
constexpr unsigned DW_LNS_fixed_advance_pc = 9;
constexpr unsigned DW_LNE_end_sequence = 1;
constexpr unsigned DW_LNE_set_address = 2;
constexpr unsigned DW_LNCT_path = 1;
constexpr unsigned DW_LNCT_directory_index = 2;
constexpr unsigned DW_AT_stmt_list = 0x10;
constexpr unsigned DW_UT_skeleton = 4, DW_UT_split_compile = 5;
enum : unsigned {
  DW_FORM_addr = 0x01, DW_FORM_block2 = 0x03, DW_FORM_block4, DW_FORM_data2, DW_FORM_data4, DW_FORM_data8,
  DW_FORM_string, DW_FORM_block, DW_FORM_block1, DW_FORM_data1, DW_FORM_flag, DW_FORM_sdata, DW_FORM_strp,
  DW_FORM_udata, DW_FORM_ref_addr, DW_FORM_ref1, DW_FORM_ref2, DW_FORM_ref4, DW_FORM_ref8, DW_FORM_ref_udata,
  DW_FORM_indirect, DW_FORM_sec_offset, DW_FORM_exprloc, DW_FORM_flag_present, DW_FORM_strx, DW_FORM_addrx,
  DW_FORM_ref_sup4, DW_FORM_strp_sup, DW_FORM_data16, DW_FORM_line_strp, DW_FORM_ref_sig8, DW_FORM_implicit_const,
  DW_FORM_loclistx, DW_FORM_rnglistx, DW_FORM_ref_sup8, DW_FORM_strx1, DW_FORM_strx2, DW_FORM_strx3, DW_FORM_strx4,
  DW_FORM_addrx1, DW_FORM_addrx2, DW_FORM_addrx3, DW_FORM_addrx4,
};
static_assert(DW_FORM_line_strp == 0x1f && DW_FORM_addrx4 == 0x2c);
constexpr std::uint64_t kNoOffset = ~std::uint64_t{0};

// Bytes is a section of a mapped file.
struct Bytes {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
};

// Reader decodes little-endian DWARF data in [p, end). A read past end sets
// bad and yields zeros (or ""), so a walk over bad data stops instead of
// reading outside the mapping.
struct Reader {
  const std::uint8_t* p;
  const std::uint8_t* end;
  bool bad = false;

  // has() is whether n more bytes can be read; false also marks the reader bad.
  bool has(std::uint64_t n) {
    if (n <= static_cast<std::uint64_t>(end - p)) return true;
    bad = true;
    p = end;
    return false;
  }
  // skip() steps over n bytes.
  void skip(std::uint64_t n) {
    if (has(n)) p += n;
  }
  // fixed() reads an n-byte unsigned integer; n <= 8.
  std::uint64_t fixed(unsigned n) {
    std::uint64_t v = 0;
    if (!has(n)) return 0;
    for (unsigned i = 0; i < n; i++) v |= std::uint64_t{p[i]} << (8 * i);
    p += n;
    return v;
  }
  // leb() reads an LEB128 number, sign-extended if is_signed.
  std::uint64_t leb(bool is_signed) {
    std::uint64_t v = 0;
    unsigned shift = 0;
    while (has(1)) {
      const std::uint8_t b = *p++;
      if (shift < 64) v |= std::uint64_t{b & 0x7fu} << shift;
      shift += 7;
      if ((b & 0x80) == 0) {
        if (is_signed && shift < 64 && (b & 0x40) != 0) v |= ~std::uint64_t{0} << shift;
        return v;
      }
    }
    return 0;
  }
  std::uint64_t uleb() { return leb(false); }
  std::int64_t sleb() { return static_cast<std::int64_t>(leb(true)); }
  // unit_length() reads the length that starts a unit and sets offset_size:
  // 4, or 8 in 64-bit DWARF.
  std::uint64_t unit_length(unsigned& offset_size) {
    offset_size = 4;
    const std::uint64_t len = fixed(4);
    if (len != 0xffffffff) return len;
    offset_size = 8;
    return fixed(8);
  }
  // cstr() reads a NUL-terminated string.
  const char* cstr() {
    const std::uint8_t* s = p;
    while (p < end && *p != 0) p++;
    if (!has(1)) return "";
    p++;
    return reinterpret_cast<const char*>(s);
  }
};

// FuncSym is a function symbol: its link-time address, size, and name (an
// offset into the module's string table).
struct FuncSym {
  std::uint64_t addr;
  std::uint32_t size;
  std::uint32_t name;
};

// LineSeq is an address range [lo, hi) and the line program describing it:
// either the offset in .debug_info of its compilation unit (cu, from
// .debug_aranges; the unit's line program is found at lookup, so start-up
// touches no page of .debug_info or .debug_line), or, when cu is kNoOffset,
// the offsets in .debug_line of its unit's header and of its sequence's first
// opcode.
struct LineSeq {
  std::uint64_t lo, hi;
  std::uint64_t cu, unit, ops;
};

// Module is one indexed ELF object. Its function symbols are either copied
// into funcs (from .symtab) or, for a stripped object, left in dynsym and
// searched there: a library's few thousand dynamic symbols cost a lookup tens
// of microseconds, but copying and sorting them at start-up costs every
// program a few hundred (each page of a file touched is a page fault).
struct Module {
  std::string path;
  std::uintptr_t bias = 0, lo = 0, hi = 0;  // load bias; [lo, hi) spans its PT_LOAD segments
  Bytes strtab, dynsym, line, line_str, str, info, abbrev, aranges;
  std::vector<FuncSym> funcs;  // sorted by address, sized, one per address
  std::vector<LineSeq> seqs;   // sorted by lo
};

struct Table {
  std::vector<Module> mods;
};
std::atomic<const Table*> table{nullptr};

// str_at() is the string at off in the string section s, or nullptr if none
// ends inside it.
const char* str_at(Bytes s, std::uint64_t off) {
  for (std::uint64_t i = off; i < s.n; i++) {
    if (s.p[i] == 0) return reinterpret_cast<const char*>(s.p + off);
  }
  return nullptr;
}

// is_func() is whether sym is a sized function defined in its object.
bool is_func(const Elf64_Sym& sym) {
  const unsigned type = ELF64_ST_TYPE(sym.st_info);
  return (type == STT_FUNC || type == STT_GNU_IFUNC) && sym.st_shndx != SHN_UNDEF && sym.st_value != 0 &&
         sym.st_size != 0;
}

// LineHeader is what a line-program unit's header says (DWARF 2 to 5).
struct LineHeader {
  unsigned version = 0;
  unsigned offset_size = 4;  // 8 in 64-bit DWARF
  unsigned addr_size = 8;
  unsigned min_inst = 1;
  int line_base = 0;
  unsigned line_range = 0;
  unsigned opcode_base = 0;
  const std::uint8_t* opcode_lengths = nullptr;  // operands of opcodes 1 .. opcode_base-1
  const std::uint8_t* tables = nullptr;          // the directory and file tables
  const std::uint8_t* prog = nullptr;            // the first opcode
  const std::uint8_t* end = nullptr;             // the end of the unit
};

// read_line_header() parses the header of the unit at off in m's .debug_line;
// false if it is not one this reader understands.
bool read_line_header(const Module& m, std::uint64_t off, LineHeader& h) {
  if (off >= m.line.n) return false;
  Reader r{m.line.p + off, m.line.p + m.line.n};
  const std::uint64_t len = r.unit_length(h.offset_size);
  if (!r.has(len)) return false;
  h.end = r.p + len;
  r.end = h.end;
  h.version = static_cast<unsigned>(r.fixed(2));
  if (h.version < 2 || h.version > 5) return false;
  if (h.version >= 5) {
    h.addr_size = static_cast<unsigned>(r.fixed(1));
    r.skip(1);  // segment_selector_size
  }
  const std::uint64_t header_len = r.fixed(h.offset_size);
  if (!r.has(header_len)) return false;
  h.prog = r.p + header_len;
  h.min_inst = static_cast<unsigned>(r.fixed(1));
  if (h.version >= 4) r.skip(1);  // maximum_operations_per_instruction: 1 but on VLIW machines
  r.skip(1);                      // default_is_stmt: a lookup takes every row
  h.line_base = static_cast<std::int8_t>(r.fixed(1));
  h.line_range = static_cast<unsigned>(r.fixed(1));
  h.opcode_base = static_cast<unsigned>(r.fixed(1));
  h.opcode_lengths = r.p;
  if (h.opcode_base == 0 || h.line_range == 0) return false;
  r.skip(h.opcode_base - 1);
  h.tables = r.p;
  return !r.bad && h.tables <= h.prog;
}

// LineRow is one row of a line table; end marks the address just past the
// last instruction of a sequence.
struct LineRow {
  std::uint64_t addr = 0;
  std::uint64_t file = 1;
  std::int64_t line = 1;
  bool end = false;
};

// LineProgram runs a line program from the start of a sequence (r.p), row by row.
struct LineProgram {
  const LineHeader& h;
  Reader r;
  LineRow state{};

  // next() runs the program to its next row and stores it in row; false at the
  // end of the unit or on bad data.
  bool next(LineRow& row) {
    while (r.p < r.end && !r.bad) {
      const unsigned op = static_cast<unsigned>(r.fixed(1));
      if (op >= h.opcode_base) {  // a special opcode: advance both, add a row
        const unsigned adj = op - h.opcode_base;
        state.addr += h.min_inst * (adj / h.line_range);
        state.line += h.line_base + static_cast<int>(adj % h.line_range);
        row = state;
        return true;
      }
      switch (op) {
        case 0: {  // an extended opcode: its length, then the opcode
          const std::uint64_t len = r.uleb();
          if (len == 0 || !r.has(len)) return false;
          const std::uint8_t* after = r.p + len;
          const unsigned sub = static_cast<unsigned>(r.fixed(1));
          if (sub == DW_LNE_set_address && len - 1 <= 8) state.addr = r.fixed(static_cast<unsigned>(len - 1));
          r.p = after;
          if (sub == DW_LNE_end_sequence) {
            state.end = true;
            row = state;
            state = LineRow{};
            return true;
          }
          break;
        }
        case DW_LNS_copy:
          row = state;
          return true;
        case DW_LNS_advance_pc:
          state.addr += h.min_inst * r.uleb();
          break;
        case DW_LNS_advance_line:
          state.line += r.sleb();
          break;
        case DW_LNS_set_file:
          state.file = r.uleb();
          break;
        case DW_LNS_const_add_pc:
          state.addr += h.min_inst * ((255 - h.opcode_base) / h.line_range);
          break;
        case DW_LNS_fixed_advance_pc:
          state.addr += r.fixed(2);
          break;
        default:  // columns, flags, ISA: skip the operands the header declares
          for (unsigned i = h.opcode_lengths[op - 1]; i > 0; i--) r.uleb();
      }
    }
    return false;
  }
};

// read_form() reads one attribute value of the given form, in a unit of the
// given offset and address sizes: a string form sets str (nullptr if the string
// is in a section we do not read), a number form sets num. False for a form
// this reader does not know.
bool read_form(Reader& r, const Module& m, unsigned offset_size, unsigned addr_size, std::uint64_t form,
               const char*& str, std::uint64_t& num) {
  str = nullptr;
  num = 0;
  if (form == DW_FORM_indirect) form = r.uleb();
  switch (form) {
    case DW_FORM_string: str = r.cstr(); break;
    case DW_FORM_strp: str = str_at(m.str, r.fixed(offset_size)); break;
    case DW_FORM_line_strp: str = str_at(m.line_str, r.fixed(offset_size)); break;
    case DW_FORM_udata: case DW_FORM_ref_udata: case DW_FORM_strx: case DW_FORM_addrx: case DW_FORM_loclistx:
    case DW_FORM_rnglistx: num = r.uleb(); break;
    case DW_FORM_sdata: num = static_cast<std::uint64_t>(r.sleb()); break;
    case DW_FORM_addr: num = r.fixed(addr_size); break;
    case DW_FORM_ref_addr: case DW_FORM_sec_offset: case DW_FORM_strp_sup: num = r.fixed(offset_size); break;
    case DW_FORM_data1: case DW_FORM_flag: case DW_FORM_ref1: case DW_FORM_strx1: case DW_FORM_addrx1:
      num = r.fixed(1); break;
    case DW_FORM_data2: case DW_FORM_ref2: case DW_FORM_strx2: case DW_FORM_addrx2: num = r.fixed(2); break;
    case DW_FORM_strx3: case DW_FORM_addrx3: num = r.fixed(3); break;
    case DW_FORM_data4: case DW_FORM_ref4: case DW_FORM_ref_sup4: case DW_FORM_strx4: case DW_FORM_addrx4:
      num = r.fixed(4); break;
    case DW_FORM_data8: case DW_FORM_ref8: case DW_FORM_ref_sig8: case DW_FORM_ref_sup8: num = r.fixed(8); break;
    case DW_FORM_data16: r.skip(16); break;  // an MD5
    case DW_FORM_block1: r.skip(r.fixed(1)); break;
    case DW_FORM_block2: r.skip(r.fixed(2)); break;
    case DW_FORM_block4: r.skip(r.fixed(4)); break;
    case DW_FORM_block: case DW_FORM_exprloc: r.skip(r.uleb()); break;
    case DW_FORM_flag_present: case DW_FORM_implicit_const: break;  // no data (the value is in the abbreviation)
    default: return false;
  }
  return !r.bad && addr_size <= 8;
}

// v5_table() walks a DWARF 5 directory or file table at r (its entry formats,
// then its entries), leaving r after it, and sets path and dir from entry index
// (left as they are if there is none). False on bad data.
bool v5_table(Reader& r, const Module& m, const LineHeader& h, std::uint64_t index, const char*& path,
              std::uint64_t& dir) {
  const unsigned nformats = static_cast<unsigned>(r.fixed(1));
  const Reader formats = r;
  for (unsigned i = 0; i < 2 * nformats; i++) r.uleb();
  const std::uint64_t n = r.uleb();
  for (std::uint64_t i = 0; i < n && !r.bad; i++) {
    Reader f = formats;
    for (unsigned k = 0; k < nformats; k++) {
      const std::uint64_t type = f.uleb(), form = f.uleb();
      const char* s = nullptr;
      std::uint64_t num = 0;
      if (!read_form(r, m, h.offset_size, h.addr_size, form, s, num)) return false;
      if (i != index) continue;
      if (type == DW_LNCT_path) path = s;
      if (type == DW_LNCT_directory_index) dir = num;
    }
  }
  return !r.bad;
}

// file_name() sets out.file and out.dir to file number file of the unit h.
// The directory is left out when the name is absolute or the directory is the
// compilation directory of a DWARF 4 unit (only .debug_info names that).
void file_name(const Module& m, const LineHeader& h, std::uint64_t file, SymFrame& out) {
  Reader r{h.tables, h.prog};
  const char* name = nullptr;
  const char* dir = nullptr;
  std::uint64_t d = 0;
  if (h.version >= 5) {
    // Directories and files are numbered from 0; directory 0 is the
    // compilation directory.
    const Reader dirs = r;
    const char* unused_path = nullptr;
    std::uint64_t unused_dir = 0;
    if (!v5_table(r, m, h, ~std::uint64_t{0}, unused_path, unused_dir) || !v5_table(r, m, h, file, name, d)) return;
    Reader dr = dirs;
    if (name != nullptr && name[0] != '/') v5_table(dr, m, h, d, dir, unused_dir);
  } else {
    // Directories, then files, each a list ended by an empty name and numbered
    // from 1; a file's name is followed by its directory, time and size.
    const Reader dirs = r;
    while (*r.cstr() != '\0') {}
    for (std::uint64_t i = 1; !r.bad; i++) {
      const char* s = r.cstr();
      if (*s == '\0') break;
      const std::uint64_t di = r.uleb();
      r.uleb();
      r.uleb();
      if (i == file) {
        name = s;
        d = di;
        break;
      }
    }
    Reader dr = dirs;
    for (std::uint64_t i = 0; name != nullptr && name[0] != '/' && i < d; i++) dir = dr.cstr();
  }
  if (name == nullptr) return;
  out.file = name;
  out.dir = dir != nullptr && *dir != '\0' ? dir : nullptr;
}

// lookup_func() sets out.func and out.func_pc to the function of m covering the
// link-time address addr, if any.
void lookup_func(const Module& m, std::uint64_t addr, SymFrame& out) {
  std::uint64_t start = 0, name = 0;
  bool found = false;
  if (!m.funcs.empty()) {
    const auto it = std::upper_bound(m.funcs.begin(), m.funcs.end(), addr,
                                     [](std::uint64_t a, const FuncSym& f) { return a < f.addr; });
    if (it != m.funcs.begin()) {
      const FuncSym& f = it[-1];
      start = f.addr;
      name = f.name;
      found = addr - f.addr < f.size;
    }
  } else {
    // The closest start below addr among the symbols that cover it.
    const auto* s = reinterpret_cast<const Elf64_Sym*>(m.dynsym.p);
    for (std::size_t i = 0; i < m.dynsym.n / sizeof(Elf64_Sym); i++) {
      if (is_func(s[i]) && s[i].st_value <= addr && addr - s[i].st_value < s[i].st_size &&
          (!found || s[i].st_value > start)) {
        start = s[i].st_value;
        name = s[i].st_name;
        found = true;
      }
    }
  }
  if (!found) return;
  out.func = str_at(m.strtab, name);
  out.func_pc = m.bias + start;
}

// stmt_list() is the .debug_line offset of the line program of the compilation
// unit at off in m's .debug_info (its first entry's DW_AT_stmt_list), or
// kNoOffset.
std::uint64_t stmt_list(const Module& m, std::uint64_t off) {
  if (off >= m.info.n) return kNoOffset;
  Reader r{m.info.p + off, m.info.p + m.info.n};
  unsigned offset_size = 4, addr_size = 8;
  const std::uint64_t len = r.unit_length(offset_size);
  if (!r.has(len)) return kNoOffset;
  r.end = r.p + len;
  const unsigned version = static_cast<unsigned>(r.fixed(2));
  std::uint64_t abbrev = 0;
  if (version >= 5) {
    const unsigned type = static_cast<unsigned>(r.fixed(1));
    addr_size = static_cast<unsigned>(r.fixed(1));
    abbrev = r.fixed(offset_size);
    if (type == DW_UT_skeleton || type == DW_UT_split_compile) r.skip(8);  // dwo_id
  } else {
    abbrev = r.fixed(offset_size);
    addr_size = static_cast<unsigned>(r.fixed(1));
  }
  const std::uint64_t code = r.uleb();
  if (r.bad || version < 2 || version > 5 || abbrev >= m.abbrev.n) return kNoOffset;
  // The entry's abbreviation: code, tag, children flag, then (attribute, form)
  // pairs up to (0, 0); an implicit_const form carries its value here.
  Reader a{m.abbrev.p + abbrev, m.abbrev.p + m.abbrev.n};
  for (std::uint64_t c = a.uleb(); c != code; c = a.uleb()) {
    if (c == 0 || a.bad) return kNoOffset;
    a.uleb();
    a.skip(1);
    for (std::uint64_t at = 1, form = 1; (at != 0 || form != 0) && !a.bad;) {
      at = a.uleb();
      form = a.uleb();
      if (form == DW_FORM_implicit_const) a.sleb();
    }
  }
  a.uleb();
  a.skip(1);
  while (!a.bad && !r.bad) {
    const std::uint64_t at = a.uleb(), form = a.uleb();
    if (at == 0 && form == 0) break;
    const char* str = nullptr;
    std::uint64_t num = 0;
    if (form == DW_FORM_implicit_const) num = static_cast<std::uint64_t>(a.sleb());
    else if (!read_form(r, m, offset_size, addr_size, form, str, num)) break;
    if (at == DW_AT_stmt_list) return num;
  }
  return kNoOffset;
}

// lookup_line() sets out's file and line for the link-time address addr of m,
// if a line program describes it.
void lookup_line(const Module& m, std::uint64_t addr, SymFrame& out) {
  auto it = std::upper_bound(m.seqs.begin(), m.seqs.end(), addr,
                             [](std::uint64_t a, const LineSeq& s) { return a < s.lo; });
  if (it == m.seqs.begin()) return;
  --it;
  const bool whole_unit = it->cu != kNoOffset;
  LineHeader h;
  if (addr >= it->hi || !read_line_header(m, whole_unit ? stmt_list(m, it->cu) : it->unit, h)) return;
  LineProgram prog{h, Reader{whole_unit ? h.prog : m.line.p + it->ops, h.end}};
  LineRow row, prev;
  bool have = false;
  // The row describing addr is the last one at or below it in its sequence:
  // the next row's address is the first one above. A compilation unit's walk
  // starts at its first sequence, so it may cross the ends of others.
  while (prog.next(row)) {
    if (have && prev.addr <= addr && row.addr > addr) {
      file_name(m, h, prev.file, out);
      out.line = static_cast<std::uint32_t>(prev.line);
      return;
    }
    prev = row;
    have = !row.end;
  }
}

// index_aranges() records the address ranges of m's compilation units from
// .debug_aranges; false if that gave none.
bool index_aranges(Module& m) {
  Reader r{m.aranges.p, m.aranges.p + m.aranges.n};
  while (r.p < r.end && !r.bad) {
    const std::uint8_t* start = r.p;
    unsigned offset_size = 4;
    const std::uint64_t len = r.unit_length(offset_size);
    if (!r.has(len)) break;
    Reader u{r.p, r.p + len};
    r.p += len;
    u.skip(2);  // version
    const std::uint64_t cu = u.fixed(offset_size);
    const unsigned addr_size = static_cast<unsigned>(u.fixed(1));
    const unsigned segment_size = static_cast<unsigned>(u.fixed(1));
    if (addr_size == 0 || addr_size > 8 || segment_size != 0) continue;
    // The (address, length) pairs start at a multiple of their size from the
    // start of the set, and end with (0, 0).
    const auto tuple = 2 * addr_size;
    u.skip((tuple - static_cast<std::size_t>(u.p - start) % tuple) % tuple);
    for (;;) {
      const std::uint64_t lo = u.fixed(addr_size), n = u.fixed(addr_size);
      if (u.bad || (lo == 0 && n == 0)) break;
      if (lo != 0 && n != 0) m.seqs.push_back({lo, lo + n, cu, 0, 0});
    }
  }
  return !m.seqs.empty();
}

// index_lines() records the sequences of every line program of m, running
// them all: for an object without .debug_aranges.
void index_lines(Module& m) {
  for (std::uint64_t off = 0; off < m.line.n;) {
    LineHeader h;
    if (!read_line_header(m, off, h)) break;
    LineProgram prog{h, Reader{h.prog, h.end}};
    std::uint64_t ops = static_cast<std::uint64_t>(h.prog - m.line.p), lo = 0;
    bool first = true;
    for (LineRow row; prog.next(row);) {
      if (first) lo = row.addr;
      first = row.end;
      if (!row.end) continue;
      // A sequence at 0 is a function the linker discarded.
      if (lo != 0 && row.addr > lo) m.seqs.push_back({lo, row.addr, kNoOffset, off, ops});
      ops = static_cast<std::uint64_t>(prog.r.p - m.line.p);
    }
    off = static_cast<std::uint64_t>(h.end - m.line.p);
  }
}

// index_funcs() copies m's function symbols from the symbol table syms (with
// strings in m.strtab) and sorts them, one per address (the longest).
void index_funcs(Module& m, Bytes syms) {
  const auto* s = reinterpret_cast<const Elf64_Sym*>(syms.p);
  for (std::size_t i = 0; i < syms.n / sizeof(Elf64_Sym); i++) {
    if (is_func(s[i]) && s[i].st_name < m.strtab.n) {
      m.funcs.push_back({s[i].st_value, static_cast<std::uint32_t>(std::min<std::uint64_t>(s[i].st_size, UINT32_MAX)),
                         s[i].st_name});
    }
  }
  std::sort(m.funcs.begin(), m.funcs.end(),
            [](const FuncSym& a, const FuncSym& b) { return a.addr != b.addr ? a.addr < b.addr : a.size > b.size; });
  m.funcs.erase(std::unique(m.funcs.begin(), m.funcs.end(),
                            [](const FuncSym& a, const FuncSym& b) { return a.addr == b.addr; }),
                m.funcs.end());
}

// load_module() maps file (the object m describes) and indexes its symbols and
// line programs into m; false if it is not a readable 64-bit ELF file.
bool load_module(const char* file, Module& m) {
  const int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && static_cast<std::size_t>(st.st_size) >= sizeof(Elf64_Ehdr)) {
    map = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  }
  close(fd);
  if (map == MAP_FAILED) return false;
  const auto* base = static_cast<const std::uint8_t*>(map);
  const auto size = static_cast<std::size_t>(st.st_size);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
      eh->e_shnum > (size - eh->e_shoff) / sizeof(Elf64_Shdr) || eh->e_shstrndx >= eh->e_shnum) {
    munmap(map, size);
    return false;
  }
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
  auto bytes = [&](const Elf64_Shdr& s) -> Bytes {
    if (s.sh_type == SHT_NOBITS || (s.sh_flags & SHF_COMPRESSED) != 0 || s.sh_offset > size ||
        s.sh_size > size - s.sh_offset) {
      return {};
    }
    return {base + s.sh_offset, s.sh_size};
  };
  const Bytes names = bytes(sh[eh->e_shstrndx]);
  const Elf64_Shdr* symtab = nullptr;
  const Elf64_Shdr* dynsym = nullptr;
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    const char* name = str_at(names, sh[i].sh_name);
    if (sh[i].sh_type == SHT_SYMTAB) symtab = &sh[i];
    if (sh[i].sh_type == SHT_DYNSYM) dynsym = &sh[i];
    if (name == nullptr) continue;
    if (std::strcmp(name, ".debug_line") == 0) m.line = bytes(sh[i]);
    if (std::strcmp(name, ".debug_line_str") == 0) m.line_str = bytes(sh[i]);
    if (std::strcmp(name, ".debug_str") == 0) m.str = bytes(sh[i]);
    if (std::strcmp(name, ".debug_info") == 0) m.info = bytes(sh[i]);
    if (std::strcmp(name, ".debug_abbrev") == 0) m.abbrev = bytes(sh[i]);
    if (std::strcmp(name, ".debug_aranges") == 0) m.aranges = bytes(sh[i]);
  }
  // A stripped object keeps only its dynamic symbols.
  const Elf64_Shdr* syms = symtab != nullptr ? symtab : dynsym;
  if (syms != nullptr && syms->sh_link < eh->e_shnum && syms->sh_entsize == sizeof(Elf64_Sym)) {
    m.strtab = bytes(sh[syms->sh_link]);
    if (syms == symtab) index_funcs(m, bytes(*syms));
    else m.dynsym = bytes(*syms);
  }
  if (!index_aranges(m)) index_lines(m);
  std::sort(m.seqs.begin(), m.seqs.end(), [](const LineSeq& a, const LineSeq& b) { return a.lo < b.lo; });
  return true;
}

// Object is a loaded ELF object found by dl_iterate_phdr: the file to read,
// the name to print, and where it is mapped.
struct Object {
  std::string file, path;
  std::uintptr_t bias, lo, hi;
};

int collect_object(dl_phdr_info* info, std::size_t, void* arg) {
  auto* objs = static_cast<std::vector<Object>*>(arg);
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    lo = std::min<std::uintptr_t>(lo, info->dlpi_addr + ph.p_vaddr);
    hi = std::max<std::uintptr_t>(hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
  }
  if (lo >= hi) return 0;
  // The program comes first, unnamed; it is printed as it was started (as
  // dladdr names it) and read through /proc, wherever it lies.
  const bool program = objs->empty() && (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0');
  if (!program && (info->dlpi_name == nullptr || info->dlpi_name[0] != '/')) return 0;  // the vDSO: no file
  objs->push_back({program ? "/proc/self/exe" : info->dlpi_name, program ? program_invocation_name : info->dlpi_name,
                   info->dlpi_addr, lo, hi});
  return 0;
}

}  // namespace

void symtab_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<Object> objs;
    dl_iterate_phdr(collect_object, &objs);
    auto* t = new Table;  // published for the life of the process
    t->mods.reserve(objs.size());
    for (const Object& o : objs) {
      Module m;
      m.path = o.path;
      m.bias = o.bias;
      m.lo = o.lo;
      m.hi = o.hi;
      if (load_module(o.file.c_str(), m)) t->mods.push_back(std::move(m));
    }
    table.store(t, std::memory_order_release);
  });
}

bool symtab_lookup(std::uintptr_t pc, SymFrame& out) {
  const Table* t = table.load(std::memory_order_acquire);
  if (t == nullptr) return false;
  for (const Module& m : t->mods) {
    if (pc < m.lo || pc >= m.hi) continue;
    out = SymFrame{};
    out.module = m.path.c_str();
    out.bias = m.bias;
    lookup_func(m, pc - m.bias, out);
    lookup_line(m, pc - m.bias, out);
    return true;
  }
  return false;
}

}  // namespace gort::rt
