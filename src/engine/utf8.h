// UTF-8 helpers for streaming: a token may end in the middle of a multi-byte character.
#pragma once

#include <cstddef>
#include <string_view>

namespace akv {

// Length of the longest prefix of s that does not end inside an incomplete UTF-8 sequence.
// Invalid bytes count as complete (they are passed through, not held back forever).
size_t CompleteUtf8Prefix(std::string_view s);
bool IsValidUtf8(std::string_view s);

}  // namespace akv
