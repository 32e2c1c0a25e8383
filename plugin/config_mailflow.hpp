// config_mailflow.hpp — the [mailflow] section and the providers' mail keys, kept apart
// from config.cpp so that file stays one job (and under its size).
//
// Errors: as every config key: Scope::config, "FILE:LINE: key", what was expected.
#pragma once

#include "config_reader.hpp"

namespace mf::config_detail {

const Keys<MailflowConfig>& mailflow_keys();

// "transport:nexthop" as Postfix's transport(5) writes it: a service name of letters,
// digits, '-', '_', '.', then ':' and a next hop without blanks or control characters.
std::optional<std::string> transport_rule(std::string& v);

// The providers' relay_transport default (from mail_host, mail_port, mail_protocol) and
// checks that span keys. `root` is the whole file, for error positions.
Result<void> validate_mailflow(const Reader& r, const toml::table& root, Config& cfg);

} // namespace mf::config_detail
