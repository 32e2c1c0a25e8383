// identity_idna.cpp — a domain as the identity map compares it: ASCII, lower case.
//
// An ASCII domain is lower-cased. A domain with non-ASCII letters (an internationalised
// name, IDNA) goes through libidn2 (UTS #46 mapping, non-transitional, NFC first) to its
// xn-- form, which folds its letter case too: BÜCHER.example and bücher.example are one
// domain, xn--bcher-kva.example. Only this file knows libidn2.
// Never: accept a name libidn2 refuses, or echo its raw bytes (identity_shown() does).
// Errors: Scope::account, Retry::never (login_error), with libidn2's reason.
#include "identity_private.hpp"

#include <idn2.h>
#include <memory>

namespace mf {
namespace {

struct IdnFree {
    void operator()(char* p) const { idn2_free(p); }
};

void lower_ascii(std::string& s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
}

} // namespace

Result<std::string> domain_to_ascii(std::string_view domain) {
    std::string in(domain);
    bool ascii = true;
    for (char c : in) {
        ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    }
    if (ascii) {
        lower_ascii(in);
        return in;
    }
    char* raw = nullptr;
    int rc = idn2_to_ascii_8z(in.c_str(), &raw, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    std::unique_ptr<char, IdnFree> out(raw);
    if (rc != IDN2_OK || out == nullptr) {
        return login_error(domain, std::string("is not a valid internationalised domain name (") +
                                       idn2_strerror(rc) + ")");
    }
    std::string result(out.get());
    lower_ascii(result);
    return result;
}

} // namespace mf
