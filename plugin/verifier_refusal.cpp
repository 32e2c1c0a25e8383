// verifier_refusal.cpp — judges a refusal by protocol, response code and wording.
//
// The rule (verifier_refusal.hpp): a code decides when there is one; a codeless refusal is
// a wrong password only when its whole text, compared without case, trailing dots or
// extra blanks, is one of the known wordings below and holds no word of a passing
// trouble. The wordings are those real servers send for a wrong password or an unknown
// user — tests/verifier_refusal_test.cpp keeps each with where it was found.
// Must never: treat a prefix or a word inside a longer text as a known wording (Courier's
// "Login failed." is not Cyrus' "Login failed: System I/O error"); call a line that is not
// a refusal a rejection.
#include "verifier_refusal.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace mf::refusal {
namespace {

struct Wording {
    const char* text; // lower case; '*' stands for any run of characters (a user name)
    const char* who;  // the server(s) that send it, for the detail
};

// Codeless IMAP NO texts that mean "wrong password or unknown user".
constexpr std::array kImapWordings{
    Wording{"login failed", "Courier-IMAP, Exchange, Zimbra"},
    Wording{"authenticate failed", "Exchange (AUTHENTICATE)"},
    Wording{"authentication failed", "Dovecot 1.x (before RFC 5530 codes)"},
    Wording{"authentication failure", "Cyrus IMAP (SASL's words, AUTHENTICATE)"},
    Wording{"login failed: authentication failure", "Cyrus IMAP (SASL's words, LOGIN)"},
    Wording{"incorrect password or account name", "CommuniGate Pro"},
};

// Codeless POP3 -ERR texts that mean "wrong password or unknown user".
constexpr std::array kPop3Wordings{
    Wording{"login failed", "Courier pop3d"},
    Wording{"bad login", "UW ipop3d"},
    Wording{"password supplied for * is incorrect", "qpopper"},
    Wording{"incorrect password or account name", "CommuniGate Pro"},
};

// Words of a passing trouble: with one of them a codeless refusal is never a verdict.
constexpr std::array kPassingTrouble{
    "temporar", "try again",   "later",       "busy",     "lock",
    "in use",   "unavailable", "maintenance", "too many", "timed out",
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// Lower case, blanks collapsed and trimmed, trailing dots dropped.
std::string normal(std::string_view s) {
    std::string out;
    for (char c : lower(s)) {
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            if (!out.empty() && out.back() != ' ') {
                out += ' ';
            }
        } else {
            out += c;
        }
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == '.')) {
        out.pop_back();
    }
    return out;
}

// Whole-text match; '*' matches one or more characters.
bool matches(std::string_view pattern, std::string_view text) {
    auto star = pattern.find('*');
    if (star == std::string_view::npos) {
        return pattern == text;
    }
    auto head = pattern.substr(0, star);
    auto tail = pattern.substr(star + 1);
    return text.size() > head.size() + tail.size() && text.substr(0, head.size()) == head &&
           text.substr(text.size() - tail.size()) == tail;
}

template <std::size_t N>
Verdict by_wording(const std::array<Wording, N>& table, std::string_view text, const char* what) {
    const std::string t = normal(text);
    for (const char* word : kPassingTrouble) {
        if (t.find(word) != std::string::npos) {
            return {VerifyStatus::unavailable,
                    std::string(what) + " without a code that speaks of a passing trouble (\"" +
                        word + "\"): not a wrong password"};
        }
    }
    for (const auto& w : table) {
        if (matches(w.text, t)) {
            return {VerifyStatus::rejected, std::string(what) + " without a code, worded as " +
                                                w.who + " word a wrong password"};
        }
    }
    return {VerifyStatus::unavailable, std::string(what) +
                                           " without a code and in words not known to mean a wrong "
                                           "password: not judged (TEMPFAIL)"};
}

// "[CODE args] text" → CODE upper-cased and the text after "]" (code empty if none).
std::pair<std::string, std::string_view> split_code(std::string_view rest) {
    if (rest.empty() || rest.front() != '[') {
        return {"", rest};
    }
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
        return {"", rest};
    }
    auto inner = rest.substr(1, close - 1);
    std::string code(inner.substr(0, inner.find(' ')));
    for (auto& c : code) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    auto text = rest.substr(close + 1);
    while (!text.empty() && text.front() == ' ') {
        text.remove_prefix(1);
    }
    return {code, text};
}

std::string_view after_word(std::string_view s) {
    auto sp = s.find(' ');
    return sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
}

Verdict imap(std::string_view line) {
    std::string_view rest = after_word(line); // drop the tag
    if (lower(rest.substr(0, 3)) != "no " && lower(rest) != "no") {
        return {VerifyStatus::unavailable, "not a NO to our login"};
    }
    auto [code, text] = split_code(after_word(rest));
    if (code == "AUTHENTICATIONFAILED") {
        return {VerifyStatus::rejected, "[AUTHENTICATIONFAILED]: wrong password or unknown user"};
    }
    if (code == "AUTHORIZATIONFAILED") {
        return {VerifyStatus::rejected, "[AUTHORIZATIONFAILED]: this user may not log in"};
    }
    if (code == "EXPIRED") {
        return {VerifyStatus::rejected, "[EXPIRED]: this password no longer gives access"};
    }
    if (code.empty() || code == "ALERT") { // ALERT carries words for a person, not a verdict
        return by_wording(kImapWordings, text, "NO");
    }
    return {VerifyStatus::unavailable,
            "NO [" + code +
                "] is not a verdict on the password (only AUTHENTICATIONFAILED, "
                "AUTHORIZATIONFAILED and EXPIRED are)"};
}

Verdict pop3(std::string_view line) {
    if (lower(line.substr(0, 4)) != "-err") {
        return {VerifyStatus::unavailable, "not a -ERR to our login"};
    }
    auto [code, text] = split_code(after_word(line));
    if (code == "AUTH") {
        return {VerifyStatus::rejected, "[AUTH]: the credentials are wrong"};
    }
    if (code.empty()) {
        return by_wording(kPop3Wordings, text, "-ERR");
    }
    return {VerifyStatus::unavailable,
            "-ERR [" + code + "] is not a verdict on the password (only [AUTH] is)"};
}

Verdict smtp(std::string_view line) {
    const auto reply = line.substr(0, 3);
    if (reply == "535" && lower(line).find("disabled") != std::string::npos) {
        // Microsoft 365: "535 5.7.139 … SmtpClientAuthentication is disabled for the Tenant"
        // refuses every password alike: the method is off, the password was not judged.
        return {VerifyStatus::unavailable,
                "535 says password logins are disabled there: not a verdict on the password"};
    }
    if (reply == "535") {
        return {VerifyStatus::rejected, "535: authentication credentials invalid"};
    }
    if (!reply.empty() && reply.front() == '4') {
        return {VerifyStatus::unavailable, std::string(reply) + ": a temporary failure"};
    }
    if (reply == "530" || reply == "534" || reply == "538") {
        return {VerifyStatus::unavailable, std::string(reply) +
                                               ": the server's policy (TLS or another mechanism "
                                               "required), not a verdict on the password"};
    }
    return {VerifyStatus::unavailable, "only 535 is a verdict on the password"};
}

} // namespace

Verdict judge(Protocol protocol, std::string_view line) {
    switch (protocol) {
    case Protocol::imap:
        return imap(line);
    case Protocol::pop3:
        return pop3(line);
    case Protocol::smtp:
        return smtp(line);
    }
    return {VerifyStatus::unavailable, "unknown protocol"};
}

} // namespace mf::refusal
