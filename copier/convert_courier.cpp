// convert_courier.cpp — Courier's Maildir metadata rewritten as Dovecot's, read through the
// Maildir Source so the conversion sees exactly what a copy from the tree would.
#include "convert_courier.hpp"

#include "file_util.hpp"
#include "source_maildir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::copy {
namespace {

namespace fs = std::filesystem;

// Courier's next UID: the third field of courierimapuiddb's first line ("1 <v> <next>").
std::uint32_t courier_next_uid(const fs::path& dir) {
    auto text = read_file((dir / "courierimapuiddb").string(), 64u << 20);
    if (!text) {
        return 0;
    }
    std::istringstream head(text->substr(0, text->find('\n')));
    unsigned long version = 0;
    unsigned long validity = 0;
    unsigned long next = 0;
    head >> version >> validity >> next;
    return next <= 0xffffffffUL ? static_cast<std::uint32_t>(next) : 0;
}

// Files we create belong to whoever owns the folder (the mail user), not to us.
Result<void> write_owned(const fs::path& path, const std::string& content, const fs::path& dir) {
    if (auto r = write_file_atomic(path.string(), content, 0600); !r) {
        return r;
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && ::geteuid() == 0 &&
        ::chown(path.c_str(), st.st_uid, st.st_gid) != 0) {
        return make_error("chown " + path.string(), errno_text(errno), Scope::folder);
    }
    return {};
}

std::string info_letters(const std::string& name) {
    auto pos = name.find(":2,");
    return pos == std::string::npos ? std::string() : name.substr(pos + 3);
}

class FolderConversion {
  public:
    FolderConversion(source::Source& src, const source::Folder& f, CourierConversion& report,
                     bool write)
        : src_(src), f_(f), dir_(f.locator), report_(report), write_(write) {}

    Result<void> run() {
        auto contents = src_.messages(f_);
        if (!contents) {
            return contents.error();
        }
        for (const auto& p : contents->problems) {
            report_.problems.push_back(p);
        }
        std::uint32_t next = courier_next_uid(dir_);
        std::string uidlist;
        std::map<std::string, char> letters; // keyword → 'a'…
        std::string keywords_file;
        std::vector<std::pair<std::string, std::string>> renames; // old, new (relative)
        for (const auto& m : contents->messages) {
            next = std::max(next, m.uid + 1);
            uidlist += std::to_string(m.uid) + " :" + m.key + "\n";
            std::string add;
            std::istringstream flags(m.flags);
            for (std::string kw; flags >> kw;) {
                if (kw[0] == '\\') {
                    continue;
                }
                auto it = letters.find(kw);
                if (it == letters.end()) {
                    if (letters.size() == 26) {
                        report_.problems.push_back(f_.name() + ": keyword \"" + kw +
                                                   "\" not carried: Dovecot's Maildir keeps at "
                                                   "most 26 keywords per folder");
                        continue;
                    }
                    char c = static_cast<char>('a' + letters.size());
                    keywords_file += std::to_string(letters.size()) + " " + kw + "\n";
                    it = letters.emplace(kw, c).first;
                }
                add += it->second;
            }
            if (add.empty()) {
                continue;
            }
            std::string file = m.locator.substr(m.locator.find('/') + 1);
            std::string now = info_letters(file) + add;
            std::sort(now.begin(), now.end());
            now.erase(std::unique(now.begin(), now.end()), now.end());
            renames.emplace_back(m.locator, "cur/" + m.key + ":2," + now);
        }
        ++report_.folders;
        report_.messages += contents->messages.size();
        report_.keywords += letters.size();
        if (!write_) {
            report_.renamed += renames.size();
            return {};
        }
        // The keyword names first, then the files that use them, then the UIDs: a run cut
        // short leaves names Dovecot can read, and no uidlist, so it is simply run again.
        if (!keywords_file.empty()) {
            if (auto r = write_owned(dir_ / "dovecot-keywords", keywords_file, dir_); !r) {
                return r;
            }
        }
        for (const auto& [from, to] : renames) {
            std::error_code ec;
            fs::rename(dir_ / from, dir_ / to, ec);
            if (ec) {
                report_.problems.push_back((dir_ / from).string() +
                                           ": rename to add keywords: " + ec.message());
                continue;
            }
            ++report_.renamed;
        }
        std::string head = "3 V" + std::to_string(contents->uidvalidity) + " N" +
                           std::to_string(std::max<std::uint32_t>(next, 1)) + "\n";
        if (auto r = write_owned(dir_ / "dovecot-uidlist", head + uidlist, dir_); !r) {
            return r;
        }
        for (const char* stale :
             {"dovecot.index", "dovecot.index.cache", "dovecot.index.log", "dovecot.index.log.2"}) {
            std::error_code ec;
            fs::remove(dir_ / stale, ec);
        }
        return {};
    }

  private:
    source::Source& src_;
    const source::Folder& f_;
    fs::path dir_;
    CourierConversion& report_;
    bool write_;
};

// courierimapsubscribed names folders "INBOX.Sub.Folder"; Dovecot's v1 subscriptions file
// names them as the namespace does ("Sub.Folder"), INBOX as itself.
Result<void> convert_subscriptions(const fs::path& root, CourierConversion& report, bool write,
                                   bool overwrite) {
    auto text = read_file((root / "courierimapsubscribed").string(), 16u << 20);
    if (!text) {
        return {}; // Courier never stored a subscription
    }
    if (fs::exists(root / "subscriptions") && !overwrite) {
        report.skipped.push_back((root / "subscriptions").string() +
                                 ": exists already (overwrite to replace)");
        return {};
    }
    std::string out;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) {
            continue;
        }
        if (line.rfind("INBOX.", 0) == 0) {
            line.erase(0, 6);
        }
        out += line + "\n";
        ++report.subscriptions;
    }
    return write ? write_owned(root / "subscriptions", out, root) : Result<void>{};
}

} // namespace

Result<CourierConversion> convert_courier_to_dovecot(const std::string& root, bool write,
                                                     bool overwrite) {
    CourierConversion report;
    auto src = source::open_maildir(root); // symbolic links are not followed
    auto folders = src->folders();
    if (!folders) {
        return folders.error();
    }
    for (const auto& p : src->tree_problems()) {
        report.skipped.push_back(p.folder + ": " + p.reason);
    }
    for (const auto& f : *folders) {
        if (f.noselect) {
            continue;
        }
        fs::path dir(f.locator);
        if (!fs::exists(dir / "courierimapuiddb")) {
            report.skipped.push_back(f.name() + ": no courierimapuiddb (Courier never opened "
                                                "it; Dovecot will number it itself)");
            continue;
        }
        if (fs::exists(dir / "dovecot-uidlist") && !overwrite) {
            report.skipped.push_back(f.name() +
                                     ": has a dovecot-uidlist already (overwrite to replace)");
            continue;
        }
        FolderConversion conv(*src, f, report, write);
        if (auto r = conv.run(); !r) {
            return r.error();
        }
    }
    if (auto r = convert_subscriptions(root, report, write, overwrite); !r) {
        return r.error();
    }
    return report;
}

} // namespace mf::copy
