// Memory pressure and the OOM killer: rc::state commands task_spawn / task_touch / task_exit,
// oom_score_adj writes, page-cache files (create, read, write, writeback, delete), drop_caches
// and the sysrq OOM trigger, against a plain model of the tasks and their pages.
//
//   OomProp.KillsHighestBadness  every OOM kill (from an allocation under pressure or sysrq 'f')
//                                takes the task the model ranks first: the highest
//                                  badness = rss + page tables (pages) + adj * (totalpages / 1000)
//                                (mm/oom_kill.c oom_badness; no swap), among the tasks whose
//                                oom_score_adj is not -1000, ties going to the later task
//                                (oom_evaluate_task skips a task only if points < chosen_points,
//                                and for_each_process walks tasks in creation order); with no
//                                eligible task an allocation panics ("no killable processes") and
//                                sysrq kills nothing; the victim's pages and page tables are
//                                freed (no page of the machine is owned by it any more); every
//                                other task keeps exactly its pages; /proc/<pid>/oom_score
//                                follows the same badness; validate.
//
// The model (OomSut::tasks) knows each task's adj, reservation (total_vm) and resident pages;
// page tables follow from the resident count. The one thing it cannot know in advance is how far
// the faulting task got when its own allocation invoked the killer: that comes from the task
// table the OOM report prints (dump_tasks), checked to lie within what the touch asked for.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <set>

#include "kmm/pressure.h"
#include "model_machine.h"

#include "physmem.h"

namespace kmm::prop {
namespace {

const char* const kOomBoot = "mem=16M nr_cpus=2";
const std::string kNoVictim = "Out of memory and no killable processes...";
// The scenario language's bounds (scenario_ops.cpp): task_touch pages=1..4096, file_read/write
// pages=1..1024, so every printed reproducer parses.
constexpr unsigned long kMaxTouch = 4096, kMaxFilePages = 1024;

// mm_pgtables_bytes() / PAGE_SIZE of a task whose `rss` anonymous pages were faulted in from
// index 0 (x86_64, 4 levels; the pgd is not counted): one PUD, a PMD per 512 * 512 pages and a
// PTE page per 512 pages. Worked example: 513 pages need 1 + 1 + 2 = 4 page-table pages.
unsigned long pgtables(unsigned long rss) {
  if (!rss) return 0;
  constexpr unsigned long kPtrs = 512;
  return 1 + (rss + kPtrs * kPtrs - 1) / (kPtrs * kPtrs) + (rss + kPtrs - 1) / kPtrs;
}

// ---- generation model ----------------------------------------------------------------------

struct OomGen {
  bool mostly_unkillable = false; // most tasks spawned with -1000: the no-victim path
  std::vector<std::string> tasks; // spawned and not exited (the OOM killer may have taken some)
  std::vector<std::string> files;
  std::map<std::string, int> adj;             // as spawned or last set
  std::map<std::string, unsigned long> asked; // pages touched in all, if nothing was killed
  unsigned next = 0;
};

unsigned num_of(const std::string& name) { return unsigned(std::stoul(name.substr(1))); }

// ---- the model of the machine's tasks ------------------------------------------------------

struct MTask {
  int pid = 0;
  int adj = 0;
  unsigned long total_vm = 0; // pages reserved
  unsigned long rss = 0;      // anonymous pages faulted in
};

struct OomSut : Sut {
  std::map<std::string, MTask> tasks; // live tasks by name
  std::map<std::string, int> pids;    // every task ever spawned
  std::set<int> dead;                 // pids that exited or were killed
  std::map<std::string, int> files;   // name -> inode
  long totalpages = 0;                // totalram_pages() (no swap)
  bool panicked = false;
  size_t seen = 0; // reports already accounted for
  // What the sequence exercised (RC_CLASSIFY at the end: the distribution is printed).
  int kills = 0, toucher_killed = 0, ties = 0, no_victim = 0;

  explicit OomSut(const std::string& boot) : Sut(boot) {
    totalpages = meminfo("MemTotal") / 4;
    seen = nreports();
  }

  std::string name_of(int pid) const {
    for (auto& [n, t] : tasks)
      if (t.pid == pid) return n;
    return "";
  }

  long badness(const MTask& t) const {
    if (t.adj == -1000) return LONG_MIN;
    long adj = t.adj;
    adj *= totalpages / 1000; // integer division first, as oom_badness does
    return static_cast<long>(t.rss + pgtables(t.rss)) + adj;
  }

  // select_bad_process() on the model: tasks in creation (pid) order, a later task taking over
  // on equal points. "" when no task is eligible.
  std::string expected_victim() const {
    std::vector<std::pair<int, std::string>> order;
    for (auto& [n, t] : tasks) order.emplace_back(t.pid, n);
    std::sort(order.begin(), order.end());
    std::string chosen;
    long chosen_points = LONG_MIN;
    for (auto& [pid, n] : order) {
      long points = badness(tasks.at(n));
      if (points == LONG_MIN || points < chosen_points) continue;
      chosen = n;
      chosen_points = points;
    }
    return chosen;
  }

  std::string describe() const {
    std::ostringstream os;
    os << "# model tasks (totalpages " << totalpages << "):\n";
    for (auto& [n, t] : tasks)
      os << "#   " << n << " pid " << t.pid << " adj " << t.adj << " rss " << t.rss << " pgtables "
         << pgtables(t.rss) << " total_vm " << t.total_vm << " badness "
         << (badness(t) == LONG_MIN ? std::string("LONG_MIN") : std::to_string(badness(t))) << "\n";
    return os.str();
  }
};

using Cmd = rc::state::Command<OomGen, OomSut>;

// One row of the OOM report's task table (dump_tasks).
struct Row {
  int pid;
  unsigned long total_vm, rss;
  long pgtables_bytes;
  int adj;
};

std::vector<Row> task_table(const std::string& text) {
  std::vector<Row> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    Row r{};
    int uid, tgid;
    unsigned long anon, file, shmem, swapents;
    char name[32];
    if (std::sscanf(line.c_str(), "[%d] %d %d %lu %lu %lu %lu %lu %ld %lu %d %31s", &r.pid, &uid,
                    &tgid, &r.total_vm, &r.rss, &anon, &file, &shmem, &r.pgtables_bytes, &swapents,
                    &r.adj, name) == 12)
      rows.push_back(r);
  }
  return rows;
}

// Accounts for the reports the last command produced. `growing` is the task whose touch was
// running (its resident count at each kill lies in [rss, rss + up_to]), or "".
void account_reports(OomSut& s, const std::string& growing, unsigned long up_to) {
  const auto& reps = s.m->reports();
  const unsigned long rss0 = growing.empty() ? 0 : s.tasks.at(growing).rss;
  for (; s.seen < reps.size(); s.seen++) {
    const Report& r = reps[s.seen];
    RC_LOG() << "# report: " << r.title << "\n";
    if (r.kind == ReportKind::AllocFail) continue; // the retries ran out between kills
    if (r.kind == ReportKind::Panic) {
      // Only right after "no killable processes" from an allocation (sysrq never panics).
      RC_ASSERT(r.title ==
                std::string("Kernel panic - not syncing: System is deadlocked on memory"));
      RC_ASSERT(s.seen > 0 && reps[s.seen - 1].title == kNoVictim);
      s.panicked = true;
      continue;
    }
    RC_ASSERT(r.kind == ReportKind::Oom);
    // The task table as the killer saw it: the model's tasks, each with its exact pages, except
    // that the growing task may be part-way through its touch.
    std::vector<Row> rows = task_table(r.text);
    RC_ASSERT(rows.size() == s.tasks.size());
    for (const Row& row : rows) {
      std::string n = s.name_of(row.pid);
      if (n.empty()) RC_LOG() << "# the OOM report lists pid " << row.pid << ", not a live task\n";
      RC_ASSERT(!n.empty());
      MTask& t = s.tasks.at(n);
      RC_ASSERT(row.adj == t.adj);
      RC_ASSERT(row.total_vm == t.total_vm);
      if (n == growing) {
        RC_ASSERT(row.rss >= t.rss);
        RC_ASSERT(row.rss <= rss0 + up_to);
        t.rss = row.rss;
      }
      RC_ASSERT(row.rss == t.rss);
      RC_ASSERT(row.pgtables_bytes == static_cast<long>(pgtables(t.rss) * 4096));
    }
    std::string want = s.expected_victim();
    if (r.title == kNoVictim) {
      s.no_victim++;
      if (!want.empty()) RC_LOG() << s.describe() << "# model victim: " << want << "\n";
      RC_ASSERT(want.empty());
      continue;
    }
    int pid = 0;
    char comm[32] = {};
    RC_ASSERT(std::sscanf(r.title.c_str(), "Out of memory: Killed process %d (%31[^)])", &pid,
                          comm) == 2);
    std::string got = s.name_of(pid);
    if (got != want)
      RC_LOG() << s.describe() << "# killed " << (got.empty() ? "pid " + std::to_string(pid) : got)
               << ", model victim " << (want.empty() ? "none" : want) << "\n";
    RC_ASSERT(got == want);
    RC_ASSERT(std::string(comm) == got);
    s.kills++;
    if (got == growing) s.toucher_killed++;
    for (auto& [n, t] : s.tasks)
      if (n != got && s.badness(t) == s.badness(s.tasks.at(got))) s.ties++;
    RC_ASSERT(s.tasks.at(got).adj != -1000);
    s.dead.insert(pid);
    s.tasks.erase(got);
  }
}

// Every page of the machine: anonymous and page-table pages belong to live tasks only, each task
// owning exactly its resident pages and 1 + pgtables(rss) page-table pages (pgd included).
void check_pages(OomSut& s) {
  std::map<int, unsigned long> anon, tables;
  Kernel& k = s.k();
  for (auto& z : k.zones) {
    if (!z.managed_pages) continue;
    for (unsigned long pfn = z.zone_start_pfn; pfn < z.end_pfn(); pfn++) {
      struct page* p = pfn_to_page(pfn);
      if (!p || !(p->flags & PG_alloc)) continue;
      if (p->owner == PageOwner::Anon) anon[static_cast<int>(p->owner_data)]++;
      if (p->owner == PageOwner::PageTable) tables[static_cast<int>(p->owner_data)]++;
    }
  }
  for (int pid : s.dead) {
    if (anon.count(pid) || tables.count(pid))
      RC_LOG() << "# pid " << pid << " is gone but still owns " << anon[pid] << " anon and "
               << tables[pid] << " page-table pages\n";
    RC_ASSERT(!anon.count(pid));
    RC_ASSERT(!tables.count(pid));
  }
  unsigned long all_anon = 0;
  for (auto& [n, t] : s.tasks) {
    RC_ASSERT(anon[t.pid] == t.rss);
    RC_ASSERT(tables[t.pid] == 1 + pgtables(t.rss));
    all_anon += t.rss;
  }
  unsigned long counted = 0;
  for (auto& [pid, c] : anon) counted += c;
  RC_ASSERT(counted == all_anon);
}

// task_list() and /proc/<pid>/oom_score agree with the model.
void check_tasks(OomSut& s) {
  auto list = task_list(*s.m);
  RC_ASSERT(list.size() == s.tasks.size());
  for (const TaskInfo& ti : list) {
    std::string n = s.name_of(ti.pid);
    RC_ASSERT(!n.empty());
    const MTask& t = s.tasks.at(n);
    RC_ASSERT(ti.comm == n);
    RC_ASSERT(ti.oom_score_adj == t.adj);
    RC_ASSERT(ti.total_vm == t.total_vm);
    RC_ASSERT(ti.rss_anon == t.rss);
    RC_ASSERT(ti.pgtables_bytes == pgtables(t.rss) * 4096);
    long b = s.badness(t);
    long score = b == LONG_MIN ? 0 : (1000 + b * 1000 / s.totalpages) * 2 / 3;
    std::string path = "/proc/" + std::to_string(t.pid) + "/oom_score";
    long got = std::strtol(s.m->proc_read(path).c_str(), nullptr, 10);
    if (got != score)
      RC_LOG() << s.describe() << "# " << path << " is " << got << ", model " << score << "\n";
    RC_ASSERT(got == score);
  }
  check_pages(s);
}

// Runs after every command's operation.
void settle(OomSut& s, const std::string& growing = "", unsigned long up_to = 0) {
  account_reports(s, growing, up_to);
  check_tasks(s);
}

rc::Gen<int> gen_adj(const OomGen& g) {
  if (g.mostly_unkillable)
    return rc::gen::weightedOneOf<int>(
        {{6, rc::gen::just(-1000)}, {1, rc::gen::inRange(-999, 1001)}});
  return rc::gen::weightedOneOf<int>({{3, rc::gen::just(-1000)},
                                      {3, rc::gen::just(0)},
                                      {1, rc::gen::just(1000)},
                                      {3, rc::gen::inRange(-3, 4)},
                                      {3, rc::gen::inRange(-1000, 1001)}});
}

// Pages per touch: small, round (page-table boundaries), and big enough to exhaust the machine
// (mem=16M has 4095 pages; a request for more in one go is refused by the overcommit heuristic).
rc::Gen<unsigned long> gen_pages() {
  return rc::gen::weightedOneOf<unsigned long>(
      {{2, rc::gen::inRange(1ul, 64ul)},
       {4, rc::gen::element(100ul, 511ul, 512ul, 513ul, 1000ul)},
       {3, rc::gen::inRange(64ul, 1500ul)},
       {2, rc::gen::inRange(1500ul, kMaxTouch + 1)}});
}

// ---- commands ------------------------------------------------------------------------------

// task_spawn on the machine and in the model.
void do_spawn(OomSut& s, const std::string& name, int adj) {
  int pid = task_spawn(*s.m, name, adj);
  account_reports(s, "", 0); // the pgd allocation may invoke the killer too
  if (pid == -ENOMEM) {
    RC_ASSERT(s.panicked); // only when nothing could be killed for the pgd page
    return;
  }
  RC_ASSERT(pid > 0);
  for (int d : s.dead) RC_ASSERT(pid != d);
  for (auto& [n, t] : s.tasks) RC_ASSERT(pid > t.pid); // pids grow: creation order
  s.tasks[name] = MTask{pid, adj, 0, 0};
  s.pids[name] = pid;
  check_tasks(s);
}

// task_touch on the machine and in the model.
void do_touch(OomSut& s, const std::string& name, unsigned long pages) {
  auto it = s.tasks.find(name);
  if (it == s.tasks.end()) { // killed earlier (or its spawn failed): the pid is gone
    if (s.pids.count(name)) RC_ASSERT(task_touch(*s.m, s.pids.at(name), pages) == -ESRCH);
    return;
  }
  MTask before = it->second;
  unsigned long missing =
      before.rss + pages > before.total_vm ? before.rss + pages - before.total_vm : 0;
  size_t r0 = s.nreports();
  long touched = task_touch(*s.m, before.pid, pages);
  if (missing > static_cast<unsigned long>(s.totalpages)) {
    // OVERCOMMIT_GUESS: one request larger than RAM + swap is refused, nothing faulted in.
    RC_ASSERT(touched == -ENOMEM);
    settle(s);
    return;
  }
  s.tasks.at(name).total_vm = before.total_vm + missing;
  account_reports(s, name, pages);
  if (s.panicked) return;
  RC_ASSERT(touched >= 0);
  RC_ASSERT(static_cast<unsigned long>(touched) <= pages);
  auto now = s.tasks.find(name);
  if (now != s.tasks.end()) {
    // Not killed: every page asked for is there, unless an allocation gave up (reported).
    bool failed = false;
    for (auto& r : s.titles(r0)) failed |= r.find("page allocation failure") != std::string::npos;
    if (!failed) RC_ASSERT(static_cast<unsigned long>(touched) == pages);
    RC_ASSERT(now->second.rss <= before.rss + static_cast<unsigned long>(touched));
    now->second.rss = before.rss + static_cast<unsigned long>(touched);
  }
  check_tasks(s);
}

std::string pick(const std::vector<std::string>& v) {
  RC_PRE(!v.empty());
  return *rc::gen::elementOf(v);
}
bool has(const std::vector<std::string>& v, const std::string& n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

struct Spawn : Cmd {
  std::string name;
  int adj;
  explicit Spawn(const OomGen& g) : name("t" + std::to_string(g.next)), adj(*gen_adj(g)) {}
  void checkPreconditions(const OomGen& g) const override {
    RC_PRE(g.tasks.size() < 6u);
    RC_PRE(num_of(name) >= g.next);
  }
  void apply(OomGen& g) const override {
    g.tasks.push_back(name);
    g.adj[name] = adj;
    g.next = num_of(name) + 1;
  }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (!s.panicked) do_spawn(s, name, adj);
  }
  void show(std::ostream& os) const override {
    os << name << " = task_spawn comm=" << name << " adj=" << adj;
  }
};

struct Touch : Cmd {
  std::string name;
  unsigned long pages = *gen_pages();
  explicit Touch(const OomGen& g) : name(pick(g.tasks)) {}
  void checkPreconditions(const OomGen& g) const override { RC_PRE(has(g.tasks, name)); }
  void apply(OomGen& g) const override { g.asked[name] += pages; }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (!s.panicked) do_touch(s, name, pages);
  }
  void show(std::ostream& os) const override { os << "task_touch " << name << " pages=" << pages; }
};

// A new task with another's oom_score_adj, touching as many pages as that one asked for: equal
// badness unless the killer interrupted one of them (the tie rule).
struct Twin : Cmd {
  std::string name, of;
  int adj = 0;
  unsigned long pages = 0;
  explicit Twin(const OomGen& g) : name("t" + std::to_string(g.next)), of(pick(g.tasks)) {
    adj = g.adj.at(of);
    pages = std::min(g.asked.count(of) ? g.asked.at(of) : 0, kMaxTouch);
    RC_PRE(pages > 0u);
  }
  void checkPreconditions(const OomGen& g) const override {
    RC_PRE(g.tasks.size() < 6u);
    RC_PRE(num_of(name) >= g.next);
  }
  void apply(OomGen& g) const override {
    g.tasks.push_back(name);
    g.adj[name] = adj;
    g.asked[name] = pages;
    g.next = num_of(name) + 1;
  }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (!s.panicked) do_spawn(s, name, adj);
    if (!s.panicked) do_touch(s, name, pages);
  }
  void show(std::ostream& os) const override {
    os << "# " << name << ": a twin of " << of << "\n"
       << name << " = task_spawn comm=" << name << " adj=" << adj << "\ntask_touch " << name
       << " pages=" << pages;
  }
};

struct Exit : Cmd {
  std::string name;
  explicit Exit(const OomGen& g) : name(pick(g.tasks)) {}
  void checkPreconditions(const OomGen& g) const override { RC_PRE(has(g.tasks, name)); }
  void apply(OomGen& g) const override {
    g.tasks.erase(std::find(g.tasks.begin(), g.tasks.end(), name));
  }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    auto it = s.tasks.find(name);
    if (it == s.tasks.end()) return; // already killed
    int pid = it->second.pid;
    RC_ASSERT(task_exit(*s.m, pid) == 0);
    RC_ASSERT(!task_alive(*s.m, pid));
    s.tasks.erase(it);
    s.dead.insert(pid);
    settle(s);
  }
  void show(std::ostream& os) const override { os << "task_exit " << name; }
};

struct SetAdj : Cmd {
  std::string name;
  int adj;
  explicit SetAdj(const OomGen& g) : name(pick(g.tasks)), adj(*gen_adj(g)) {}
  void checkPreconditions(const OomGen& g) const override { RC_PRE(has(g.tasks, name)); }
  void apply(OomGen& g) const override { g.adj[name] = adj; }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    auto it = s.tasks.find(name);
    if (it == s.tasks.end()) return;
    std::string path = "/proc/" + std::to_string(it->second.pid) + "/oom_score_adj";
    RC_ASSERT(s.m->proc_write(path, std::to_string(adj)) == 0);
    it->second.adj = adj;
    settle(s);
  }
  void show(std::ostream& os) const override { os << "oom_score_adj " << name << " adj=" << adj; }
};

// echo f > /proc/sysrq-trigger: the OOM killer by hand (order -1: never a panic).
struct Sysrq : Cmd {
  explicit Sysrq(const OomGen&) {}
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    bool eligible = !s.expected_victim().empty();
    size_t r0 = s.nreports();
    RC_ASSERT(s.m->proc_write("/proc/sysrq-trigger", "f") == 0);
    settle(s);
    RC_ASSERT(!s.panicked);
    RC_ASSERT(s.nreports() == r0 + 1);
    RC_ASSERT(eligible == (s.m->reports().back().title != kNoVictim));
  }
  void show(std::ostream& os) const override { os << "out_of_memory"; }
};

struct FileCreate : Cmd {
  std::string name;
  explicit FileCreate(const OomGen& g) : name("f" + std::to_string(g.next)) {}
  void checkPreconditions(const OomGen& g) const override {
    RC_PRE(g.files.size() < 4u);
    RC_PRE(num_of(name) >= g.next);
  }
  void apply(OomGen& g) const override {
    g.files.push_back(name);
    g.next = num_of(name) + 1;
  }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    int ino = file_create(*s.m, name);
    RC_ASSERT(ino > 0);
    s.files[name] = ino;
  }
  void show(std::ostream& os) const override { os << name << " = file_create name=" << name; }
};

// file_read / file_write of a range: page-cache pages (clean or dirty) that reclaim may take
// back before the OOM killer is needed. The allocations may invoke the killer themselves.
struct FileIo : Cmd {
  std::string name;
  bool write = *rc::gen::arbitrary<bool>();
  unsigned long index = *rc::gen::inRange(0ul, 2000ul);
  unsigned long pages = *rc::gen::weightedOneOf<unsigned long>(
      {{2, rc::gen::inRange(1ul, 64ul)}, {1, rc::gen::inRange(64ul, kMaxFilePages + 1)}});
  explicit FileIo(const OomGen& g) : name(pick(g.files)) {}
  void checkPreconditions(const OomGen& g) const override { RC_PRE(has(g.files, name)); }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    int ino = s.files.at(name);
    long n = write ? file_write(*s.m, ino, index, pages) : file_read(*s.m, ino, index, pages);
    settle(s);
    if (s.panicked) return;
    RC_ASSERT(n >= 0);
    RC_ASSERT(static_cast<unsigned long>(n) <= pages);
    RC_ASSERT(file_cached_pages(*s.m, ino) >= 0);
  }
  void show(std::ostream& os) const override {
    os << (write ? "file_write " : "file_read ") << name << " index=" << index
       << " pages=" << pages;
  }
};

struct FileDelete : Cmd {
  std::string name;
  explicit FileDelete(const OomGen& g) : name(pick(g.files)) {}
  void checkPreconditions(const OomGen& g) const override { RC_PRE(has(g.files, name)); }
  void apply(OomGen& g) const override {
    g.files.erase(std::find(g.files.begin(), g.files.end(), name));
  }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    RC_ASSERT(file_delete(*s.m, s.files.at(name)) == 0);
    s.files.erase(name);
    settle(s);
  }
  void show(std::ostream& os) const override { os << "file_delete " << name; }
};

// Writes back one file's dirty pages: they become clean, so reclaim can take them.
struct Writeback : Cmd {
  std::string name;
  explicit Writeback(const OomGen& g) : name(pick(g.files)) {}
  void checkPreconditions(const OomGen& g) const override { RC_PRE(has(g.files, name)); }
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    RC_ASSERT(writeback(*s.m, s.files.at(name)) >= 0);
    settle(s);
  }
  void show(std::ostream& os) const override { os << "writeback " << name; }
};

// Drops the clean page cache.
struct DropCaches : Cmd {
  explicit DropCaches(const OomGen&) {}
  void run(const OomGen&, OomSut& s) const override {
    s.step(*this);
    if (s.panicked) return;
    RC_ASSERT(s.m->proc_write("/proc/sys/vm/drop_caches", "1") == 0);
    settle(s);
  }
  void show(std::ostream& os) const override { os << "proc_write /proc/sys/vm/drop_caches 1"; }
};

} // namespace

RC_GTEST_PROP(OomProp, KillsHighestBadness, ()) {
  OomSut s(kOomBoot);
  RC_ASSERT(s.totalpages > 1000);
  OomGen g;
  g.mostly_unkillable =
      *rc::gen::weightedOneOf<bool>({{3, rc::gen::just(false)}, {1, rc::gen::just(true)}});
  auto gen = rc::state::gen::execOneOfWithArgs<Spawn, Spawn, Twin, Twin, Touch, Touch, Touch, Touch,
                                               Exit, SetAdj, Sysrq, FileCreate, FileIo, FileIo,
                                               FileDelete, Writeback, DropCaches>();
  auto cmds = *rc::gen::resize(40 * scale(), rc::state::gen::commands(g, gen));
  rc::state::runAll(cmds, g, s);
  RC_CLASSIFY(s.kills > 0, "OOM kill");
  RC_CLASSIFY(s.toucher_killed > 0, "the faulting task killed");
  RC_CLASSIFY(s.ties > 0, "kill among equal badness");
  RC_CLASSIFY(s.no_victim > 0 && !s.panicked, "no killable task (sysrq)");
  RC_CLASSIFY(s.panicked, "panic");
  if (s.panicked) return; // the machine is halted: nothing more to check
  for (auto& [n, t] : s.tasks) {
    s.note("task_exit " + n);
    RC_ASSERT(task_exit(*s.m, t.pid) == 0);
    s.dead.insert(t.pid);
  }
  s.tasks.clear();
  settle(s);
  s.check_valid();
}

} // namespace kmm::prop
