// fuzz_mbox_split.cpp — feeds bytes to the mbox source (copier/source_mbox.hpp open_mbox) as
// the content of one mbox file: written to a temporary file that is the INBOX, indexed by
// messages() (From_ splitting, Content-Length, status headers, X-IMAPbase/X-UID, the X-IMAP
// pseudo message), then every message read back with read().
//
// Input: byte 0 picks the quoting ("mbox:", "mboxrd:", "mboxo:"); the rest is the file.
// A bug: any sanitizer report or crash; two messages with one UID, or UIDs not ascending;
// read() of the unchanged file failing or delivering other than Message::size bytes (the
// size messages() promised). A file refused by messages() ("not an mbox file") is never a
// bug. Must never: write anything but its own temporary file (removed at exit).
#include "source_mbox.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace {

std::string g_dir;  // mkdtemp'd once per process
std::string g_file; // g_dir + "/inbox"

void cleanup() {
    ::unlink(g_file.c_str());
    ::rmdir(g_dir.c_str());
}

void write_file(const std::uint8_t* data, std::size_t size) {
    int fd = ::open(g_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::abort();
    }
    while (size > 0) {
        auto n = ::write(fd, data, size);
        if (n <= 0) {
            std::abort();
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    ::close(fd);
}

void read_all(mf::copy::source::Source& src, const mf::copy::source::Folder& f) {
    auto contents = src.messages(f);
    if (!contents) {
        return;
    }
    std::uint32_t last = 0;
    for (const auto& m : contents->messages) {
        if (m.uid <= last) {
            std::abort();
        }
        last = m.uid;
        std::uint64_t got = 0;
        auto r = src.read(f, m, [&](std::string_view chunk) -> mf::Result<void> {
            got += chunk.size();
            return {};
        });
        if (!r || got != m.size) {
            // Say which, for whoever replays the input.
            std::fprintf(stderr, "message uid %u at %s: size %llu, read %llu bytes: %s\n", m.uid,
                         m.locator.c_str(), static_cast<unsigned long long>(m.size),
                         static_cast<unsigned long long>(got),
                         r ? "ok" : r.error().message().c_str());
            std::abort();
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    // $TMPDIR first, but a TMPDIR that does not exist or is not writable must not
    // turn into a "crash" of the target: /tmp, then the working directory, are fallbacks.
    const char* env = std::getenv("TMPDIR");
    for (std::string base :
         {std::string(env != nullptr ? env : ""), std::string("/tmp"), std::string(".")}) {
        if (base.empty()) {
            continue;
        }
        std::string templ = base + "/fuzz-mbox-XXXXXX";
        if (::mkdtemp(templ.data()) != nullptr) {
            g_dir = templ;
            break;
        }
    }
    if (g_dir.empty()) {
        std::fprintf(stderr, "fuzz_mbox_split: cannot make a temporary directory\n");
        std::abort();
    }
    g_file = g_dir + "/inbox";
    std::atexit(cleanup);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    static const mf::copy::source::MboxQuoting kQuoting[] = {mf::copy::source::MboxQuoting::none,
                                                             mf::copy::source::MboxQuoting::mboxrd,
                                                             mf::copy::source::MboxQuoting::mboxo};
    write_file(data + 1, size - 1);
    auto src = mf::copy::source::open_mbox(g_file, kQuoting[data[0] % 3]);
    auto folders = src->folders();
    if (!folders) {
        return 0;
    }
    for (const auto& f : *folders) {
        if (!f.noselect) {
            read_all(*src, f);
        }
    }
    return 0;
}
