// fuzz_mbox_from_date.cpp — feeds bytes to the mbox From_ line date reader
// (copier/source_mbox.hpp mbox_from_date), which decides where one message of an mbox
// file ends and the next begins: the input as a line, and the input after "From a@b " (so
// the date part is reached at once).
//
// A bug: any sanitizer report or crash (a read past the line: the reader indexes ahead by
// fixed offsets), or a date accepted for a line that does not start with "From ". Which
// dates are taken is not checked here (tests/copier_mbox_source_test.cpp does). Must
// never: read or write a file. TZ is UTC, so a date without a zone is read the same way on
// every machine.
#include "source_mbox.hpp"

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    // An exact-size heap copy: ASan then catches a read one past the line's end.
    std::string copy(line);
    auto d = mf::copy::source::mbox_from_date(std::string_view(copy.data(), copy.size()));
    if (d && line.rfind("From ", 0) != 0) {
        std::abort();
    }
    std::string from = "From a@b " + copy;
    (void)mf::copy::source::mbox_from_date(from);
    return 0;
}
