// config_auth_http.hpp — the [auth_http] section's key list and cross-key checks, kept
// out of config.cpp (which lists the other sections) so each file keeps one job.
//
// Errors: Scope::config, "FILE:LINE: auth_http.KEY" with what was expected.
#pragma once

#include "config_reader.hpp"

namespace mf::config_detail {

const Keys<AuthHttpConfig>& auth_http_keys();

// After the keys are read: sets `configured`, asks for at least one new server and a
// whole-second wait.
Result<void> validate_auth_http(const Reader& r, const toml::table& root, Config& cfg);

} // namespace mf::config_detail
