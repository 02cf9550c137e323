// Shared helpers for the test suites: parse /proc files back, count reports.
#pragma once

#include <string>
#include <vector>

#include "kmm/machine.h"

namespace kmm::test {

// Each line of a /proc file split into whitespace-separated words.
std::vector<std::vector<std::string>> proc_rows(Machine& m, const std::string& path);
// The number after "key" or "key:" on the first line that starts with it.
long proc_value(Machine& m, const std::string& path, const std::string& key);
// Reports whose title contains `needle`.
size_t count_reports(Machine& m, const std::string& needle);
// Whether `lines` (kmm::validate()'s errors, say) holds exactly `line`.
bool has(const std::vector<std::string>& lines, const std::string& line);
// `lines` one per line, for a failure message.
std::string dump(const std::vector<std::string>& lines);

} // namespace kmm::test
