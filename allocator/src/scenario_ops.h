// The scenario language's operation table and the pieces the parser, printer, codec and
// interpreter share: argument schemas, the symbol table of results, and access windows.
//
// Every operation is one OpSpec in scenario_ops.cpp. A subsystem adds an operation there and
// nowhere else: the text syntax, the binary layout and the executor all come from its entry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kmm/scenario.h"

namespace kmm::scn {

// What an operation's result is. A reference accepts a set of kinds (a RefMask).
// New kinds go at the end (the decoder numbers results per kind).
enum class Kind : uint8_t { None, Page, Virt, Cache, Obj, Vmalloc, Kvmalloc, Cma, Dma, Task, File };
inline constexpr int kNumKinds = 11;
enum RefMask : uint16_t {
  R_PAGE = 1,      // alloc_pages: struct page* of an order-n block
  R_VIRT = 2,      // alloc_pages_exact: direct-map address of `size` bytes
  R_CACHE = 4,     // kmem_cache_create
  R_OBJ = 8,       // slab object or kmalloc'd memory
  R_VMALLOC = 16,  // vmalloc, vzalloc: the vmalloc address of `size` bytes
  R_KVMALLOC = 32, // kvmalloc, kvzalloc: a kmalloc or a vmalloc address
  R_CMA = 64,      // cma_alloc: `count` contiguous pages of the CMA area
  R_DMA = 128,     // dma_alloc_coherent: a coherent buffer of a scenario device
  R_TASK = 256,    // task_spawn: a task; its memory is its anonymous pages, in address order
  R_FILE = 512,    // file_create: a page-cache file
  R_DATA = R_PAGE | R_VIRT | R_OBJ | R_VMALLOC | R_KVMALLOC | R_CMA | R_DMA | R_TASK,
  R_ANY = R_DATA | R_CACHE | R_FILE,
};
uint16_t kind_mask(Kind k);
const char* kind_noun(Kind k);     // "a page allocation", "a cache" ...
const char* mask_noun(uint16_t m); // what a reference needs: "a page allocation", "memory" ...
char kind_prefix(Kind k);          // canonical name prefix: p x c o v k m d t f

enum class FieldType : uint8_t {
  Ref,       // positional result name
  Access,    // positional REF+OFF (or REF-OFF) plus len=N: a memory range
  UInt,      // a number in [min, max]; positional when key is null
  Byte,      // 0..255, printed 0x%02x
  Gfp,       // GFP flags, printed as the kernel's %pGg
  SlabFlags, // SLAB_* flags
  Ctor,      // symbolic constructor: none | fill
  Name,      // identifier [A-Za-z0-9_.-]{1,24} (cache name)
  Text,      // positional "quoted string" of printable ASCII without '"' or '\', at most 63
  PathRead,  // positional /proc or /sys path
  PathWrite,
};

enum class Need : uint8_t {
  Required, // must be given
  Default,  // fixed default filled in by the parser (so it is always printed)
  Optional, // may be absent (its meaning then depends on the reference, e.g. free order)
};

struct Field {
  const char* key; // "order"; nullptr for a positional field (for Access: the len key)
  FieldType type;
  Need need = Need::Required;
  int64_t min = 0, max = 0; // UInt range
  int64_t def = 0;          // Need::Default
  uint16_t refs = 0;        // Ref/Access: accepted result kinds (RefMask)
  bool corrupt = false;     // Access: may reach outside the allocation (deliberately)
  bool skewed = false;      // UInt of at most 32 values: the binary form draws small ones more
                            // often (scenario_codec.cpp: an allocation order)
};

struct Runner; // scenario_run.cpp
struct SymTab;

struct OpSpec {
  const char* name; // "alloc_pages", "expect report"
  Kind result;      // Kind::None: the operation has no result
  std::vector<Field> fields;
  void (*exec)(Runner& r, const Op& op);
  // The byte size of the result (for access windows), given the defined results so far.
  int64_t (*result_size)(const Op& op, const SymTab& syms) = nullptr;
  const char* help = "";
  // What the operation does to results defined before it, as far as access windows go
  // (task_touch grows its task's memory). Called by SymTab::define.
  void (*effect)(const Op& op, SymTab& syms) = nullptr;
};

const std::vector<OpSpec>& op_table();
int find_op(const std::string& name); // -1 if unknown

// The results defined so far, in order: what a reference may name, with the static facts the
// codec and the parser need (kind, byte size).
struct Def {
  std::string name;
  Kind kind;
  int64_t size;
};
struct SymTab {
  std::vector<Def> defs;
  const Def* find(const std::string& name) const;
  // The indices of defs a reference of kinds `mask` may name, into `out` (cleared first).
  void candidates(uint16_t mask, std::vector<size_t>& out) const;
  void define(const Op& op); // after op: its result, if any, and its effect on earlier ones
  Def* find_mut(const std::string& name);
};

// Storage for decode_scenario to reuse. A fuzz harness decodes thousands of inputs a second, and
// every operation's argument vector was a host allocation: recycle_ops keeps a finished
// scenario's argument vectors and its op vector's buffer for this thread's next decode (which
// takes them with take_ops and for each op's arguments). Bounded.
void recycle_ops(std::vector<Op>&& ops);
std::vector<Op> take_ops(size_t reserve);
// Fills this thread's storage up front for scenarios of up to `ops` operations (see
// NodePool::reserve for why a fuzz harness wants its storage grown before the inputs).
void reserve_op_storage(size_t ops);

// Offsets a memory access may use on a result: [lo, hi). Checked accesses stay inside a page
// allocation, and reach a slab object's red zones (64 bytes either side); `corrupt` goes a page
// beyond either end (for vmalloc and kvmalloc memory only beyond the end: into the guard page).
// The length is 1 .. min(hi - off, kMaxAccessLen).
inline constexpr int64_t kMaxAccessLen = 65536;
inline constexpr int64_t kMaxWindow = int64_t(1) << 24; // offsets are 3 bytes in the binary form
struct Window {
  int64_t lo, hi;
};
Window access_window(const Def& d, bool corrupt);

// Constants of the boot line as the parser and codec need them (nr_cpus folds `cpu N`).
unsigned boot_nr_cpus(const std::string& boot);

// Path tables for the binary form.
const std::vector<std::string>& read_paths();
const std::vector<std::string>& write_paths();

// SLAB_* flag names (empty until slab.h exists); printing and parsing.
std::string slab_flags_names(uint64_t flags);
bool parse_slab_flags(const std::string& text, uint64_t* out);
uint64_t slab_flags_mask();

// Text-field character rules.
bool text_char_ok(char c);
bool name_char_ok(char c);
inline constexpr size_t kMaxText = 63;
inline constexpr size_t kMaxName = 24;

} // namespace kmm::scn
