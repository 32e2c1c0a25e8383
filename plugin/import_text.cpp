// import_text.cpp — TextFile and the per-line checks every admin input goes through.
//
// A file is read whole with a size limit, then split on LF; a CR before the LF is dropped
// (counted, so a report can say the file had CRLF ends), a UTF-8 BOM at the start is
// dropped, a UTF-16 BOM refuses the file. The buffer is wiped when the TextFile dies,
// because replay files and clear-text exports hold passwords.
// Must never: put a line's content into a message (only numbers, positions, byte values).
// Errors: "open(FILE) failed: reason", "FILE: larger than N bytes", "FILE: UTF-16 text".
#include "mailferry/import.hpp"

#include "file_util.hpp"
#include "mailferry/secret.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf {

TextFile::~TextFile() {
    wipe(data_.data(), data_.size());
}

TextFile::TextFile(TextFile&& other) noexcept
    : name_(std::move(other.name_)), data_(std::move(other.data_)), lines_(std::move(other.lines_)),
      had_bom_(other.had_bom_), crlf_lines_(other.crlf_lines_), unterminated_(other.unterminated_) {
}

TextFile& TextFile::operator=(TextFile&& other) noexcept {
    if (this != &other) {
        wipe(data_.data(), data_.size());
        name_ = std::move(other.name_);
        data_ = std::move(other.data_); // the heap buffer moves; the views stay valid
        lines_ = std::move(other.lines_);
        had_bom_ = other.had_bom_;
        crlf_lines_ = other.crlf_lines_;
        unterminated_ = other.unterminated_;
    }
    return *this;
}

Result<TextFile> TextFile::read(const std::string& path, std::size_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return make_error("open(" + path + ") failed", errno_text(errno), Scope::config);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        ::close(fd);
        return make_error("read(" + path + ") failed", errno_text(e), Scope::config);
    }
    std::vector<char> data;
    if (S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) > max_bytes) {
        ::close(fd);
        return make_error(path, "larger than " + std::to_string(max_bytes) + " bytes",
                          Scope::config);
    }
    if (S_ISREG(st.st_mode)) {
        data.reserve(static_cast<std::size_t>(st.st_size) + 1);
    }
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            ::close(fd);
            wipe(buf, sizeof buf);
            wipe(data.data(), data.size());
            return make_error("read(" + path + ") failed", errno_text(e), Scope::config);
        }
        if (n == 0) {
            break;
        }
        if (data.size() + static_cast<std::size_t>(n) > max_bytes) {
            ::close(fd);
            wipe(buf, sizeof buf);
            wipe(data.data(), data.size());
            return make_error(path, "larger than " + std::to_string(max_bytes) + " bytes",
                              Scope::config);
        }
        if (data.capacity() < data.size() + static_cast<std::size_t>(n)) {
            // Grow by hand so the old buffer is wiped, not just freed.
            std::vector<char> bigger;
            bigger.reserve(
                std::max(data.capacity() * 2, data.size() + static_cast<std::size_t>(n)));
            bigger.assign(data.begin(), data.end());
            wipe(data.data(), data.size());
            data.swap(bigger);
        }
        data.insert(data.end(), buf, buf + n);
    }
    ::close(fd);
    wipe(buf, sizeof buf);
    return split(std::move(data), path);
}

Result<TextFile> TextFile::from_text(std::string_view text, std::string name) {
    return split(std::vector<char>(text.begin(), text.end()), std::move(name));
}

Result<TextFile> TextFile::split(std::vector<char> data, std::string name) {
    TextFile f;
    f.name_ = std::move(name);
    f.data_ = std::move(data);
    std::string_view all(f.data_.data(), f.data_.size());
    if (all.starts_with("\xFF\xFE") || all.starts_with("\xFE\xFF")) {
        return make_error(f.name_,
                          "UTF-16 text; convert it first: iconv -f UTF-16 -t UTF-8 " + f.name_ +
                              " > " + f.name_ + ".utf8",
                          Scope::config);
    }
    if (all.starts_with("\xEF\xBB\xBF")) {
        f.had_bom_ = true;
        all.remove_prefix(3);
    }
    while (!all.empty()) {
        auto nl = all.find('\n');
        std::string_view line = all.substr(0, nl);
        if (nl == std::string_view::npos) {
            f.unterminated_ = true;
            all = {};
        } else {
            all.remove_prefix(nl + 1);
        }
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
            ++f.crlf_lines_;
        }
        f.lines_.push_back(line);
    }
    return f;
}

std::string readable_by_others_warning(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) {
        return {};
    }
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    std::string who = (st.st_mode & 004) != 0 ? "everybody" : "its group";
    return path + " is readable by " + who + " (mode " + mode + "): chmod 600 " + path;
}

std::string utf8_problem(std::string_view text) {
    auto bad = [&](std::size_t i) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "byte 0x%02X at column %zu is not valid UTF-8",
                      static_cast<unsigned>(static_cast<unsigned char>(text[i])), i + 1);
        return std::string(buf);
    };
    std::size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<unsigned char>(text[i]);
        std::size_t len = c < 0x80           ? 1
                          : (c >> 5) == 0x6  ? 2
                          : (c >> 4) == 0xE  ? 3
                          : (c >> 3) == 0x1E ? 4
                                             : 0;
        if (len == 0 || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4) || i + len > text.size()) {
            return bad(i);
        }
        for (std::size_t k = 1; k < len; ++k) {
            if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) {
                return bad(i);
            }
        }
        if (len == 3) {
            auto c1 = static_cast<unsigned char>(text[i + 1]);
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) {
                return bad(i); // overlong or a UTF-16 surrogate
            }
        }
        if (len == 4) {
            auto c1 = static_cast<unsigned char>(text[i + 1]);
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) {
                return bad(i);
            }
        }
        i += len;
    }
    return {};
}

std::string line_problem(std::string_view line) {
    if (line.size() > kMaxInputLine) {
        return "line longer than " + std::to_string(kMaxInputLine) + " bytes";
    }
    if (auto nul = line.find('\0'); nul != std::string_view::npos) {
        return "NUL byte at column " + std::to_string(nul + 1) + " (binary data?)";
    }
    if (auto cr = line.find('\r'); cr != std::string_view::npos) {
        return "stray CR at column " + std::to_string(cr + 1);
    }
    return {};
}

} // namespace mf
