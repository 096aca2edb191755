#include "stop_strings.h"

#include <algorithm>
#include <utility>

namespace pylon::runtime_server {

std::string StopMatcher::push(std::string_view text) {
    if (stopped_) return {};
    held_.append(text);
    std::size_t first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, held_.find(s));
    if (first != std::string::npos) {
        std::string out = held_.substr(0, first);
        held_.clear();
        stopped_ = true;
        return out;
    }
    // Hold back the longest tail that is a proper prefix of a stop sequence. Both are valid
    // UTF-8 and a prefix starts at a character boundary, so the cut is at one too.
    std::size_t hold = 0;
    for (const auto& s : stops_) {
        for (std::size_t k = std::min(s.size() - 1, held_.size()); k > hold; --k) {
            if (std::string_view(held_).substr(held_.size() - k) ==
                std::string_view(s).substr(0, k)) {
                hold = k;
                break;
            }
        }
    }
    std::string out = held_.substr(0, held_.size() - hold);
    held_.erase(0, held_.size() - hold);
    return out;
}

std::string StopMatcher::flush() {
    if (stopped_) return {};
    return std::exchange(held_, {});
}

}  // namespace pylon::runtime_server
