// mutf7.cpp — modified UTF-7 codec. Strict both ways: what it produces decodes back to the
// same bytes, and anything it accepts is canonical.
#include "mutf7.hpp"

#include <cstdint>
#include <vector>

namespace mf::imap {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == ',') {
        return 63;
    }
    return -1;
}

Error bad(std::string_view name, const char* why) {
    return make_error("decode mailbox name \"" + sanitize_reply(name, 100) + "\"", why,
                      Scope::folder, Retry::never);
}

void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// Next code point of UTF-8 at s[i]; advances i. -1 on invalid input.
long next_utf8(std::string_view s, std::size_t& i) {
    auto b = static_cast<unsigned char>(s[i]);
    int n = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
        ++i;
        return b;
    } else if ((b & 0xE0) == 0xC0) {
        n = 1;
        cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
        n = 2;
        cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
        n = 3;
        cp = b & 0x07;
    } else {
        return -1;
    }
    for (int k = 1; k <= n; ++k) {
        if (i + static_cast<std::size_t>(k) >= s.size()) {
            return -1;
        }
        auto c = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
        if ((c & 0xC0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return -1;
    }
    i += static_cast<std::size_t>(n) + 1;
    return static_cast<long>(cp);
}

} // namespace

Result<std::string> mutf7_decode(std::string_view in) {
    std::string out;
    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i];
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            if (u >= 0x80) {
                // Not mUTF-7 at all; a server with UTF8=ACCEPT semantics. Accept valid UTF-8.
                std::size_t j = i;
                if (next_utf8(in, j) < 0) {
                    return bad(in, "invalid 8-bit bytes");
                }
                out.append(in.substr(i, j - i));
                i = j;
                continue;
            }
            return bad(in, "control character");
        }
        if (c != '&') {
            out.push_back(c);
            ++i;
            continue;
        }
        std::size_t end = in.find('-', i + 1);
        if (end == std::string_view::npos) {
            return bad(in, "'&' without closing '-'");
        }
        if (end == i + 1) {
            out.push_back('&');
            i = end + 1;
            continue;
        }
        std::uint32_t bits = 0;
        int nbits = 0;
        std::vector<std::uint16_t> units;
        for (std::size_t k = i + 1; k < end; ++k) {
            int v = b64_value(in[k]);
            if (v < 0) {
                return bad(in, "bad base64 in '&…-' run");
            }
            bits = (bits << 6) | static_cast<std::uint32_t>(v);
            nbits += 6;
            if (nbits >= 16) {
                nbits -= 16;
                units.push_back(static_cast<std::uint16_t>((bits >> nbits) & 0xFFFF));
            }
        }
        if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0) {
            return bad(in, "'&…-' run has leftover bits");
        }
        for (std::size_t k = 0; k < units.size(); ++k) {
            std::uint32_t cp = units[k];
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (k + 1 >= units.size() || units[k + 1] < 0xDC00 || units[k + 1] > 0xDFFF) {
                    return bad(in, "unpaired surrogate");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (units[k + 1] - 0xDC00);
                ++k;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return bad(in, "unpaired surrogate");
            } else if (cp >= 0x20 && cp < 0x7f) {
                return bad(in, "printable ASCII encoded in base64");
            }
            put_utf8(out, cp);
        }
        i = end + 1;
    }
    return out;
}

Result<std::string> mutf7_encode(std::string_view in) {
    std::string out;
    std::size_t i = 0;
    while (i < in.size()) {
        auto u = static_cast<unsigned char>(in[i]);
        if (u >= 0x20 && u < 0x7f) {
            out += in[i] == '&' ? std::string_view("&-") : in.substr(i, 1);
            ++i;
            continue;
        }
        std::vector<std::uint16_t> units;
        while (i < in.size()) {
            auto v = static_cast<unsigned char>(in[i]);
            if (v >= 0x20 && v < 0x7f) {
                break;
            }
            long cp = next_utf8(in, i);
            if (cp < 0) {
                return make_error("encode mailbox name \"" + sanitize_reply(in, 100) + "\"",
                                  "invalid UTF-8", Scope::folder, Retry::never);
            }
            if (cp >= 0x10000) {
                auto c = static_cast<std::uint32_t>(cp) - 0x10000;
                units.push_back(static_cast<std::uint16_t>(0xD800 + (c >> 10)));
                units.push_back(static_cast<std::uint16_t>(0xDC00 + (c & 0x3FF)));
            } else {
                units.push_back(static_cast<std::uint16_t>(cp));
            }
        }
        out.push_back('&');
        std::uint32_t bits = 0;
        int nbits = 0;
        for (auto w : units) {
            bits = (bits << 16) | w;
            nbits += 16;
            while (nbits >= 6) {
                nbits -= 6;
                out.push_back(kB64[(bits >> nbits) & 0x3F]);
            }
        }
        if (nbits > 0) {
            out.push_back(kB64[(bits << (6 - nbits)) & 0x3F]);
        }
        out.push_back('-');
    }
    return out;
}

} // namespace mf::imap
