#include "eval/recall_runner.h"

#include <algorithm>
#include <chrono>

namespace akv {

std::vector<int32_t> ContinuationTokens(const Engine& engine, const std::string& text, const std::string& piece) {
  const std::vector<int32_t> a = engine.Tokenize(text, /*add_special=*/true);
  const std::vector<int32_t> b = engine.Tokenize(text + piece, /*add_special=*/true);
  if (b.size() > a.size() && std::equal(a.begin(), a.end(), b.begin())) return {b.begin() + a.size(), b.end()};
  // A merge across the boundary (rare: pieces start with a space): tokenize the piece alone.
  return engine.Tokenize(piece, /*add_special=*/false);
}

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Greedy continuation until the value is complete: stops at the first non-digit after a digit,
// at any other text before a digit, at end of generation, or after max_tokens. Every sampled
// token is decoded into the session when `keep` is set, so a following query sees the answer.
StatusOr<std::string> Answer(Engine& engine, Session& session, int max_tokens, bool keep) {
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.repeat_penalty = 1;
  std::string text;
  for (int i = 0; i < max_tokens; ++i) {
    AKV_ASSIGN_OR_RETURN(int32_t tok, session.Sample(greedy));
    if (engine.IsEndOfGeneration(tok)) break;
    const std::string piece = engine.TokenPiece(tok);
    text += piece;
    const bool last = i + 1 == max_tokens || session.n_past() + 1 >= session.n_ctx();
    bool done = last;
    size_t k = 0;
    while (k < text.size() && (text[k] == ' ' || text[k] == '"' || text[k] == '\'' || text[k] == '\n')) ++k;
    if (k < text.size()) {
      size_t j = k;
      while (j < text.size() && IsDigit(text[j])) ++j;
      done = done || j < text.size();  // a non-digit after (or instead of) the digits
    }
    if (keep || !done) AKV_RETURN_IF_ERROR(session.Decode(tok));
    if (done) break;
  }
  return text;
}

QueryOutcome Score(const RecallPrompt& p, const RecallQuery& q, const std::string& generated) {
  const PlantedFact& f = p.facts[q.fact];
  QueryOutcome o;
  o.fact = q.fact;
  o.template_id = f.fact.template_id;
  o.expected = f.fact.value;
  o.generated = generated;
  o.answer = ExtractAnswer(generated);
  o.correct = o.answer == o.expected;
  o.target_depth = f.target_depth;
  o.depth = f.depth;
  o.token_pos = f.token_pos;
  return o;
}

}  // namespace

StatusOr<RecallOutcome> RunRecall(Engine& engine, Session& session, const RecallPrompt& p, bool query_in_prefill) {
  if (p.queries.empty()) return InvalidArgument("recall prompt has no query");
  const auto t0 = std::chrono::steady_clock::now();
  session.Reset();
  RecallOutcome out;
  std::string transcript = p.context;
  size_t first = 0;
  if (query_in_prefill) {
    transcript += p.queries[0].text;
    const std::vector<int32_t> tokens = engine.Tokenize(transcript, /*add_special=*/true);
    AKV_RETURN_IF_ERROR(session.Prefill(tokens));
    out.context_tokens = session.n_past();
    const bool more = p.queries.size() > 1;
    AKV_ASSIGN_OR_RETURN(std::string g, Answer(engine, session, p.max_answer_tokens, more));
    out.cache = session.cache_stats();
    out.queries.push_back(Score(p, p.queries[0], g));
    transcript += g;
    first = 1;
  } else {
    AKV_RETURN_IF_ERROR(session.Prefill(engine.Tokenize(transcript, /*add_special=*/true)));
    out.context_tokens = session.n_past();
  }
  for (size_t i = first; i < p.queries.size(); ++i) {
    const RecallQuery& q = p.queries[i];
    const std::vector<int32_t> tokens = ContinuationTokens(engine, transcript, q.text);
    AKV_RETURN_IF_ERROR(session.Prefill(tokens));
    transcript += q.text;
    AKV_ASSIGN_OR_RETURN(std::string g, Answer(engine, session, p.max_answer_tokens, i + 1 < p.queries.size()));
    if (i == 0) out.cache = session.cache_stats();
    out.queries.push_back(Score(p, q, g));
    transcript += g;
  }
  out.total_tokens = session.n_past();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace akv
