#pragma once
/// Reads a rules file (rules/*.yaml) into a RuleSet, strictly: unknown keys,
/// wrong types and rules that could serve one user's data to another are refused.

#include "yaml/config_error.hpp"
#include "rules/route_rule.hpp"

#include <optional>
#include <string>

namespace cacheproxy::rules {

/// Reads and checks the rules file at `path` (schema: rules/trading.yaml).
/// Returns the first error (file, line, column, key such as "routes[0].ttl");
/// `out` is only written on success. Never throws.
std::optional<config::ConfigError> load_rules(const std::string& path, RuleSet& out);

}  // namespace cacheproxy::rules
