// empty_unit.cpp — keeps a component library valid while it has no sources of its own
// yet (CMake refuses a library without sources). Holds nothing.
namespace mf::detail {
[[maybe_unused]] constexpr int kEmptyUnit = 0;
} // namespace mf::detail
