// Runs a recall prompt on a session: greedy answers, exact match of the value's digits.
#pragma once

#include <string>
#include <vector>

#include "akv/akv.hpp"
#include "eval/recall_prompt.h"

namespace akv {

struct QueryOutcome {
  int fact = 0;
  std::string template_id;
  std::string expected;
  std::string generated;  // the greedy continuation, as text
  std::string answer;     // its leading digits
  bool correct = false;
  double target_depth = 0, depth = 0;  // of the fact asked for
  int64_t token_pos = 0;
};

struct RecallOutcome {
  std::vector<QueryOutcome> queries;
  int64_t context_tokens = 0;  // tokens prefilled before the first answer
  int64_t total_tokens = 0;    // tokens in the session at the end
  CacheStats cache;            // after the first answer (the cache the first query was answered from)
  double seconds = 0;
};

// query_in_prefill: the first query is prefilled together with the context (one prompt, as a
// user would send it; query-aware policies such as SnapKV see the question). Otherwise the
// context is prefilled alone (the cache is compressed with no question in sight) and every
// query follows in turn, each after the previous answer, from the same session.
StatusOr<RecallOutcome> RunRecall(Engine& engine, Session& session, const RecallPrompt& prompt, bool query_in_prefill);

// Tokens that `piece` adds after `text` (with BOS at the start of text): the tokenization of
// text + piece past the tokenization of text, so the boundary is tokenized as in one prompt.
std::vector<int32_t> ContinuationTokens(const Engine& engine, const std::string& text, const std::string& piece);

}  // namespace akv
