// JobArgs: the arguments after `--` on the command line, as `--name value` pairs and `--flag`s.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

class JobArgs {
 public:
  JobArgs() = default;
  explicit JobArgs(std::vector<std::string> raw) : raw_(std::move(raw)) {
    for (size_t i = 0; i < raw_.size(); ++i) {
      const std::string& a = raw_[i];
      if (a.rfind("--", 0) != 0 || a.size() == 2) {
        positional_.push_back(a);
        continue;
      }
      std::string name = a.substr(2);
      auto eq = name.find('=');
      if (eq != std::string::npos) {
        values_[name.substr(0, eq)] = name.substr(eq + 1);
      } else if (i + 1 < raw_.size() && raw_[i + 1].rfind("--", 0) != 0) {
        values_[name] = raw_[++i];
      } else {
        values_[name] = "true";
      }
    }
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  // The value of --name, or `fallback` when absent.
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // The value of --name; throws std::invalid_argument naming it when absent.
  std::string required(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw std::invalid_argument("missing required argument --" + name);
    return it->second;
  }
  // The value of --name as an integer; throws std::invalid_argument naming it when malformed.
  int64_t get_int(const std::string& name, int64_t fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    try {
      size_t used = 0;
      int64_t v = std::stoll(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument("argument --" + name + " is not an integer: '" + it->second + "'");
  }
  double get_double(const std::string& name, double fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    try {
      size_t used = 0;
      double v = std::stod(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument("argument --" + name + " is not a number: '" + it->second + "'");
  }
  bool get_bool(const std::string& name, bool fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    if (it->second == "true" || it->second == "1") return true;
    if (it->second == "false" || it->second == "0") return false;
    throw std::invalid_argument("argument --" + name + " is not a boolean: '" + it->second + "'");
  }
  const std::vector<std::string>& raw() const { return raw_; }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::vector<std::string> raw_;
  std::vector<std::string> positional_;
  std::map<std::string, std::string> values_;
};

}  // namespace sluice
