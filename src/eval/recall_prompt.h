// Prompts for the recall tasks: facts ("Anna Kowalski said: "My secret number is 73915."")
// planted at chosen depths of real filler text, and the queries that ask for them (the fact's
// cue, which the model must complete with the value).
//
// The shared tiny models recall by induction: they copy what followed an earlier occurrence of
// the cue, so a cue must occur exactly once (../shared/models/MODELS.md). Names are drawn until
// neither the name nor the cue occurs anywhere in the filler corpus, and the cue tokens that
// follow the name ("said: "My") are chosen to be rare in prose as well.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "akv/status.h"
#include "eval/filler.h"

namespace akv {

// {name} and {value} are replaced; `cue` must be a prefix of `fact` after substitution, ending
// right before the value.
struct FactTemplate {
  std::string id;
  std::string fact;
  std::string cue;
};
const std::vector<FactTemplate>& DefaultFactTemplates();
// Comma-separated template ids ("quote,card"); empty: all. Unknown ids are an error.
StatusOr<std::vector<FactTemplate>> SelectTemplates(std::string_view ids);

struct Fact {
  std::string template_id;
  std::string name;
  std::string value;  // digits
  std::string text;   // the sentence planted in the context
  std::string cue;    // the question: the fact up to the value
};

struct PlantedFact {
  Fact fact;
  double target_depth = 0;
  int64_t token_pos = 0;  // first token of the fact in the context (BOS = position 0)
  double depth = 0;       // token_pos / context tokens
};

struct RecallQuery {
  int fact = 0;      // index into RecallPrompt::facts
  std::string text;  // appended to what came before (" " + cue)
};

struct RecallPrompt {
  std::string task;
  std::string context;  // filler and facts (no BOS)
  int64_t context_tokens = 0;  // tokens of the context including BOS
  std::vector<PlantedFact> facts;
  std::vector<RecallQuery> queries;  // asked in this order
  int max_answer_tokens = 0;
};

// Tokenizes text as a prompt (with BOS when the model adds one).
using TokenizeFn = std::function<std::vector<int32_t>(const std::string&)>;

struct RecallPromptOptions {
  std::string task = "recall";  // recall, multifact, multiquery
  int n_ctx = 1024;             // prompt plus answers must fit
  // recall/multifact: one depth, the queried fact's; multiquery: one fact per depth, all asked.
  std::vector<double> depths = {0.5};
  int n_facts = 4;              // multifact: facts in the context (one queried, the others at random depths)
  int value_digits = 5;
  std::vector<FactTemplate> templates;  // empty: DefaultFactTemplates()
  uint64_t seed = 1;
};

StatusOr<RecallPrompt> BuildRecallPrompt(const FillerCorpus& corpus, const TokenizeFn& tokenize,
                                         const RecallPromptOptions& options);

// The classic pass-key prompt (repeated "The grass is green. The sky is blue. ..." filler with
// "The pass key is 71432. Remember it." at the depth). The shared tiny models cannot solve it
// (their induction sees only the last token, "is"); it is here for users with larger models.
StatusOr<RecallPrompt> BuildPasskeyPrompt(const TokenizeFn& tokenize, const RecallPromptOptions& options);

// The value the model gave: leading spaces and quotes skipped, then the run of digits
// ("" when the text does not start with one).
std::string ExtractAnswer(std::string_view generated);

}  // namespace akv
