// Shared helpers for the test suites (see test_util.h).
#include "test_util.h"

#include <algorithm>
#include <sstream>

namespace kmm::test {

std::vector<std::vector<std::string>> proc_rows(Machine& m, const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(m.proc_read(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<std::string> row;
    std::string w;
    while (words >> w) row.push_back(w);
    rows.push_back(row);
  }
  return rows;
}

long proc_value(Machine& m, const std::string& path, const std::string& key) {
  for (auto& row : proc_rows(m, path))
    if (row.size() >= 2 && (row[0] == key || row[0] == key + ":")) return std::stol(row[1]);
  throw std::runtime_error(path + " has no " + key);
}

size_t count_reports(Machine& m, const std::string& needle) {
  size_t n = 0;
  for (auto& r : m.reports())
    if (r.title.find(needle) != std::string::npos) n++;
  return n;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string dump(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

} // namespace kmm::test
