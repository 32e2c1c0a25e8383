// provisioner_impl.hpp — private: the four provisioner factories and the helpers they share.
//
// Only plugin/provisioner*.cpp include this. Every factory checks its part of the config
// and answers an Error with Scope::config (never Retry::later: a bad config does not heal
// by itself); every provision() failure is Retry::later, so the engine answers TEMPFAIL
// and nothing is recorded as provisioned.
#pragma once

#include "mailferry/provisioner.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace mf::prov {

Result<std::unique_ptr<Provisioner>> make_builtin(const ProvisionerConfig& cfg);
Result<std::unique_ptr<Provisioner>> make_passwd_file(const ProvisionerConfig& cfg);
Result<std::unique_ptr<Provisioner>> make_command(const ProvisionerConfig& cfg);
Result<std::unique_ptr<Provisioner>> make_http(const ProvisionerConfig& cfg);

// A provision() failure: the new server or its file could not be changed now; retry later.
Error fail(std::string what, std::string detail = {}, Scope scope = Scope::server);

// A config problem found by a factory.
Error config_error(std::string what, std::string detail);

// Replaces every occurrence of `secret` in `text` with "***" (a peer that echoes the
// password back must not put it into our error messages). Empty secrets change nothing.
void redact(std::string& text, std::string_view secret);

// The first non-empty line of `text`, redacted and sanitized to at most max_len bytes.
std::string first_line_for_error(std::string_view text, std::string_view secret,
                                 std::size_t max_len = 200);

} // namespace mf::prov
