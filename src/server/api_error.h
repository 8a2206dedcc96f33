// OpenAI-style errors: {"error": {"message", "type", "param", "code"}} with an HTTP status.
#pragma once

#include <string>

#include "akv/status.h"

namespace akv::server {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending request field ("" when none)
  std::string code;   // machine-readable reason ("" when none)

  // The response body; never throws (invalid UTF-8 in the message is replaced).
  std::string ToJson() const;
};

ApiError BadRequest(std::string message, std::string param = "", std::string code = "");
// Maps a library Status to an HTTP error: bad input -> 400, missing -> 404, busy -> 503, else 500.
ApiError FromStatus(const Status& status, std::string param = "");

}  // namespace akv::server
