// config_cleartext.hpp — the check that names every clear-text path a password would take.
//
// Must never: stay silent about a configured connection that carries a password without
// TLS. Errors: none; it only warns (Reader::warn), each warning "FILE:LINE: key: …".
#pragma once

#include "config_reader.hpp"

namespace mf::config_detail {

// After validation: one warning per clear-text path, saying whose password goes where.
void warn_clear_text(const Reader& r, const toml::table& root, const Config& cfg);

} // namespace mf::config_detail
