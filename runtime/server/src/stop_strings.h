// Stop sequences over streamed text: finds the first one to appear and holds back text that may
// still turn out to be the start of one, so that a stream never shows a stop sequence (or a
// part of one) that the non-streamed answer would not contain.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pylon::runtime_server {

class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

    // Adds generated text; returns what can be shown now. Once a stop sequence has appeared,
    // stopped() is true, the text before it has been returned and everything after is dropped.
    std::string push(std::string_view text);
    // What is still held back (call when generation ended without a stop sequence).
    std::string flush();
    bool stopped() const noexcept { return stopped_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace pylon::runtime_server
