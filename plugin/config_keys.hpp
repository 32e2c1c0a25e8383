// config_keys.hpp — the list of every key mailferry.toml knows, for documentation checks.
//
// Kept apart from config_reader.hpp so a test can use it without toml++.
#pragma once

#include <string>
#include <vector>

namespace mf::config_detail {

// "store.path", "provider.host", … in declaration order (plugin/config.cpp).
std::vector<std::string> config_keys();

} // namespace mf::config_detail
