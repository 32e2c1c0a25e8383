// cgpauth_proto.cpp — CGP helper request parsing (quote-aware) and reply formatting.
//
// Must never echo an argument of a request; every reason string below is fixed text or
// a sanitized command word.
#include "cgpauth_proto.hpp"

#include <algorithm>
#include <arpa/inet.h>

namespace mf::cgp {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_control(char c) {
    auto b = static_cast<unsigned char>(c);
    return b < 0x20 || b == 0x7f;
}

void skip_spaces(std::string_view line, std::size_t& pos) {
    while (pos < line.size() && line[pos] == ' ') {
        ++pos;
    }
}

std::string upper_word(std::string_view w) {
    std::string out;
    for (char c : w.substr(0, 32)) {
        if (c >= 'a' && c <= 'z') {
            out += static_cast<char>(c - 32);
        } else if (is_control(c) || static_cast<unsigned char>(c) >= 0x80) {
            out += '?';
        } else {
            out += c;
        }
    }
    if (w.size() > 32) {
        out += "...";
    }
    return out;
}

// "[address]" after VRFY's password: an IPv4 or IPv6 literal, and the end of the line.
bool read_address(std::string_view line, std::size_t& pos, std::string& ip, std::string& error) {
    auto close = line.find(']', pos);
    std::string text(line.substr(pos + 1, close == std::string_view::npos ? 0 : close - pos - 1));
    unsigned char buf[sizeof(in6_addr)];
    if (close == std::string_view::npos || close + 1 != line.size() || text.empty() ||
        text.size() > 45 ||
        (::inet_pton(AF_INET, text.c_str(), buf) != 1 &&
         ::inet_pton(AF_INET6, text.c_str(), buf) != 1)) {
        error = "malformed client address after the password (expected [IPv4 or IPv6 address])";
        return false;
    }
    ip = std::move(text);
    pos = close + 1;
    return true;
}

// "(…)" up to the first ')' ; the content has no control bytes.
bool read_mode(std::string_view line, std::size_t& pos, std::string& mode, std::string& error) {
    auto close = line.find(')', pos);
    if (close == std::string_view::npos) {
        error = "unterminated (mode) token";
        return false;
    }
    std::string_view content = line.substr(pos + 1, close - pos - 1);
    if (std::any_of(content.begin(), content.end(), is_control)) {
        error = "control character in (mode) token";
        return false;
    }
    if (close + 1 < line.size() && line[close + 1] != ' ') {
        error = "no space after the (mode) token";
        return false;
    }
    mode = std::string(content);
    pos = close + 1;
    return true;
}

struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s.data(), s.size()); }
};

// Length of the valid UTF-8 sequence at the start of `t` (0: not valid there).
std::size_t utf8_len(std::string_view t) {
    auto b = [&t](std::size_t i) { return static_cast<unsigned char>(t[i]); };
    auto cont = [&](std::size_t i) { return i < t.size() && (b(i) & 0xC0) == 0x80; };
    unsigned char c = b(0);
    if (c >= 0xC2 && c <= 0xDF) {
        return cont(1) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2) || (c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3) || (c == 0xF0 && b(1) < 0x90) ||
            (c == 0xF4 && b(1) > 0x8F)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

// Appends `text` to a reply or log line: control bytes become spaces, bytes that are not
// UTF-8 become '?', and the line stops before kMaxLine bytes without splitting a character.
void append_clean(std::string& out, std::string_view text) {
    while (!text.empty()) {
        auto c = static_cast<unsigned char>(text[0]);
        std::size_t n = c < 0x80 ? 1 : utf8_len(text);
        if (out.size() + (n == 0 ? 1 : n) > kMaxLine) {
            return;
        }
        if (c < 0x80) {
            out += is_control(text[0]) ? ' ' : text[0];
        } else if (n > 0) {
            out.append(text.substr(0, n));
        } else {
            out += '?';
            n = 1;
        }
        text.remove_prefix(n);
    }
}

} // namespace

std::string_view leading_seq(std::string_view line) {
    std::size_t n = 0;
    while (n < line.size() && is_digit(line[n])) {
        ++n;
    }
    if (n == 0 || n > 20 || (n < line.size() && line[n] != ' ')) {
        return {};
    }
    return line.substr(0, n);
}

bool next_string(std::string_view line, std::size_t& pos, std::string& out, std::string& error) {
    out.clear();
    out.reserve(line.size()); // no reallocation: no stray copies of a password
    skip_spaces(line, pos);
    if (pos >= line.size()) {
        error = "missing argument";
        return false;
    }
    if (line[pos] != '"') {
        // Atom: CGP quotes everything but letters and digits; we also take unquoted
        // addresses and other printable runs, as the server's own examples show them.
        while (pos < line.size() && line[pos] != ' ') {
            char c = line[pos];
            if (is_control(c)) {
                error = "control character in an unquoted argument";
                return false;
            }
            if (c == '"') {
                error = "quote inside an unquoted argument";
                return false;
            }
            out += c;
            ++pos;
        }
        return true;
    }
    ++pos; // opening quote
    while (pos < line.size()) {
        char c = line[pos];
        if (c == '"') {
            ++pos;
            if (pos < line.size() && line[pos] != ' ') {
                error = "no space after a quoted argument";
                return false;
            }
            return true;
        }
        if (is_control(c)) {
            error = "control character inside a quoted argument (must be escaped)";
            return false;
        }
        if (c != '\\') {
            out += c;
            ++pos;
            continue;
        }
        if (pos + 1 >= line.size()) {
            break; // backslash at the end: unterminated
        }
        char e = line[pos + 1];
        switch (e) {
        case '"':
        case '\\':
            out += e;
            pos += 2;
            continue;
        case 'r':
            out += '\r';
            pos += 2;
            continue;
        case 'n':
        case 'e': // "end of line" of the server OS: LF on the Unix systems we run on
            out += '\n';
            pos += 2;
            continue;
        case 't':
            out += '\t';
            pos += 2;
            continue;
        default:
            break;
        }
        if (is_digit(e)) {
            if (pos + 3 >= line.size() || !is_digit(line[pos + 2]) || !is_digit(line[pos + 3])) {
                error = "\\nnn escape needs three decimal digits";
                return false;
            }
            int v = (e - '0') * 100 + (line[pos + 2] - '0') * 10 + (line[pos + 3] - '0');
            if (v > 255) {
                error = "\\nnn escape above 255";
                return false;
            }
            out += static_cast<char>(v);
            pos += 4;
            continue;
        }
        error = "unknown escape in a quoted argument";
        return false;
    }
    error = "unterminated quoted argument";
    return false;
}

namespace {

// VRFY's "[(mode)] user password [address]" or NEW's "[(mode)] user", from `pos` to the
// end of the line, into `r` (`tmp` is the caller's wiped scratch string).
bool parse_account_args(std::string_view line, std::size_t& pos, Request& r, std::string& tmp,
                        std::string& error) {
    const bool vrfy = r.word == "VRFY";
    skip_spaces(line, pos);
    if (pos < line.size() && line[pos] == '(' && !read_mode(line, pos, r.mode, error)) {
        return false;
    }
    if (!next_string(line, pos, tmp, error)) {
        error = (error == "missing argument" ? std::string("missing account name") : error) +
                (vrfy ? "; expected: n VRFY [(mode)] user@domain password"
                      : "; expected: n NEW user@domain");
        return false;
    }
    r.user = tmp;
    if (vrfy) {
        if (!next_string(line, pos, tmp, error)) {
            error = (error == "missing argument" ? std::string("missing password") : error) +
                    "; expected: n VRFY [(mode)] user@domain password";
            return false;
        }
        r.password = Secret(tmp);
        skip_spaces(line, pos);
        if (pos < line.size() && line[pos] == '[' && !read_address(line, pos, r.client_ip, error)) {
            return false;
        }
    }
    skip_spaces(line, pos);
    if (pos < line.size()) {
        error =
            vrfy ? "unexpected text after the password" : "unexpected text after the account name";
        return false;
    }
    r.command = vrfy ? Command::vrfy : Command::new_account;
    return true;
}

} // namespace

Parsed parse_request(std::string_view line) {
    Parsed p;
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    std::string_view seq = leading_seq(line);
    p.seq = std::string(seq);
    if (seq.empty()) {
        p.error = "request without a sequence number";
        return p;
    }
    if (line.find('\0') != std::string_view::npos) {
        p.error = "NUL byte in the request";
        return p;
    }
    std::size_t pos = seq.size();
    skip_spaces(line, pos);
    std::size_t word_end = line.find(' ', pos);
    if (word_end == std::string_view::npos) {
        word_end = line.size();
    }
    std::string_view word = line.substr(pos, word_end - pos);
    if (word.empty()) {
        p.error = "missing command";
        return p;
    }
    Request r;
    r.seq = p.seq;
    r.word = upper_word(word);
    pos = word_end;

    std::string tmp; // may carry a password: wiped when we leave
    Wiper wiper{tmp};
    if (r.word == "INTF") {
        if (!next_string(line, pos, tmp, p.error) || tmp.empty() || tmp.size() > 9 ||
            !std::all_of(tmp.begin(), tmp.end(), is_digit)) {
            p.error = "INTF needs a numeric interface version";
            return p;
        }
        r.command = Command::intf;
        r.version = tmp;
    } else if (r.word == "VRFY" || r.word == "NEW") {
        if (!parse_account_args(line, pos, r, tmp, p.error)) {
            return p;
        }
    } else if (r.word == "QUIT") {
        r.command = Command::quit;
    } else if (r.word.rfind("SASL", 0) == 0) {
        r.command = Command::sasl;
    } else {
        r.command = Command::unsupported;
    }
    p.request = std::move(r);
    return p;
}

std::string reply_line(std::string_view seq, std::string_view word, std::string_view text) {
    std::string out(seq);
    out += ' ';
    out += word;
    if (!text.empty()) {
        out += ' ';
        append_clean(out, text);
    }
    out += '\n';
    return out;
}

std::string info_line(std::string_view text) {
    std::string out = "* ";
    append_clean(out, text);
    out += '\n';
    return out;
}

} // namespace mf::cgp
