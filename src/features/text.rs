//! Questions as a Hugging Face LM reads them: the synthetic benchmark's 19-token vocabulary
//! rendered as words (each family's question a sentence, each answer a word), and every
//! question re-tokenised by the checkpoint's tokenizer around the `model.template` parts:
//! `prompt = before_question ++ question ++ before_answer` and
//! `option = answer ++ after_answer`. Text questions (feature files' `"question"` lines) are
//! tokenised the same way; token-id questions keep their ids, which then index the LM's
//! vocabulary, with the template's text tokenised around them.
use super::synthetic::{vocab, FAMILIES};
use super::Question;
use crate::config::TemplateParts;
use crate::error::Result;

/// The question sentence of each synthetic family, in `FAMILIES` order.
pub const SYNTHETIC_QUESTIONS: [&str; 5] = [
    "What colour is the ring that appears in one frame?",
    "What colour is the square that appears first?",
    "How many times does the whole frame flash?",
    "What colour is the small checkered mark?",
    "Which way does the white square move?",
];

/// The word of a synthetic answer token (colours, counts, directions); `None` for the
/// padding, end-of-answer and question tokens.
pub fn synthetic_word(id: i64) -> Option<&'static str> {
    const WORDS: [&str; 12] = ["red", "green", "blue", "yellow", "zero", "one", "two", "three", "left", "right", "up", "down"];
    let first = vocab::COLORS[0];
    (first..first + WORDS.len() as i64).contains(&id).then(|| WORDS[(id - first) as usize])
}

/// The text of a synthetic question's prompt ids (its family's sentence).
fn synthetic_prompt(prompt: &[i64]) -> String {
    let sentences = prompt.iter().filter_map(|id| vocab::QUESTION.iter().position(|q| q == id).map(|f| SYNTHETIC_QUESTIONS[f]));
    sentences.collect::<Vec<_>>().join(" ")
}

/// The text of a synthetic answer's ids: its words, each after a space (end-of-answer is the
/// template's `after_answer`).
fn synthetic_answer(option: &[i64]) -> String {
    option.iter().filter_map(|&id| synthetic_word(id)).map(|w| format!(" {w}")).collect()
}

/// Every synthetic family's (question, options) as text, for length checks.
pub fn synthetic_texts() -> Vec<(String, Vec<String>)> {
    let words = [vocab::COLORS, vocab::COLORS, vocab::COUNTS, vocab::COLORS, vocab::DIRECTIONS];
    (0..FAMILIES.len()).map(|f| (SYNTHETIC_QUESTIONS[f].to_string(), words[f].iter().map(|&w| synthetic_answer(&[w, vocab::EOS])).collect())).collect()
}

/// How the source's questions become the LM's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// The synthetic benchmark's ids, rendered as words and tokenised.
    SyntheticWords,
    /// Ids kept as they are (they index the LM's vocabulary).
    Ids,
}

/// A tokenizer call: the ids of a text (special tokens added when the flag is true).
pub type Encode<'a> = &'a dyn Fn(&str, bool) -> Result<Vec<i64>>;

/// The questions as the LM's token ids around the template's parts.
pub fn for_hf(questions: &[Question], rendering: Rendering, parts: &TemplateParts, encode: Encode) -> Result<Vec<Question>> {
    let (before_q, before_a, after_a) = (encode(&parts.before_question, false)?, encode(&parts.before_answer, false)?, encode(&parts.after_answer, false)?);
    questions
        .iter()
        .map(|q| {
            let (prompt, options) = match (&q.text, rendering) {
                (Some(text), _) => {
                    let prompt = format!("{}{}{}", parts.before_question, text.question, parts.before_answer);
                    let options = text.options.iter().map(|o| encode(&format!("{o}{}", parts.after_answer), false)).collect::<Result<Vec<_>>>()?;
                    (encode(&prompt, false)?, options)
                }
                (None, Rendering::SyntheticWords) => {
                    let text = format!("{}{}{}", parts.before_question, synthetic_prompt(&q.prompt), parts.before_answer);
                    let options =
                        q.options.iter().map(|o| encode(&format!("{}{}", synthetic_answer(o), parts.after_answer), false)).collect::<Result<Vec<_>>>()?;
                    (encode(&text, false)?, options)
                }
                (None, Rendering::Ids) => {
                    let prompt = [before_q.as_slice(), &q.prompt, &before_a].concat();
                    (prompt, q.options.iter().map(|o| [o.as_slice(), &after_a].concat()).collect())
                }
            };
            Ok(Question { video: q.video, family: q.family.clone(), prompt, options, answer: q.answer, text: q.text.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in tokenizer: one id per byte (offset by 100), plus 1 in front when asked.
    fn bytes(text: &str, special: bool) -> Result<Vec<i64>> {
        Ok(special.then_some(1).into_iter().chain(text.bytes().map(|b| 100 + b as i64)).collect())
    }

    #[test]
    fn synthetic_questions_read_as_sentences_and_answers_as_words() {
        let q =
            Question { video: 3, family: "motion".into(), prompt: vec![vocab::QUESTION[4]], options: vec![vec![15, 1], vec![18, 1]], answer: 1, text: None };
        let parts = crate::config::parse_template("<u>{video}\n{question} A:{answer}</s>").unwrap();
        let out = for_hf(std::slice::from_ref(&q), Rendering::SyntheticWords, &parts, &bytes).unwrap();
        let text = |ids: &[i64]| ids.iter().map(|&i| (i - 100) as u8 as char).collect::<String>();
        assert_eq!(text(&out[0].prompt), "\nWhich way does the white square move? A:");
        assert_eq!(out[0].options.iter().map(|o| text(o)).collect::<Vec<_>>(), [" left</s>", " down</s>"]);
        assert_eq!((out[0].video, out[0].answer, out[0].family.as_str()), (3, 1, "motion"));
        // Ids are kept, with the template's text tokenised around them.
        let ids = for_hf(&[q], Rendering::Ids, &parts, &bytes).unwrap();
        assert_eq!(ids[0].prompt, [vec![110], vec![vocab::QUESTION[4]], bytes(" A:", false).unwrap()].concat());
        assert_eq!(ids[0].options[0], [vec![15, 1], bytes("</s>", false).unwrap()].concat());
    }

    #[test]
    fn text_questions_are_tokenised_around_the_template() {
        let parts = crate::config::parse_template("<s>{video}Q: {question} A:{answer}</s>").unwrap();
        let text = super::super::QuestionText { question: "Which?".into(), options: vec![" red".into(), " blue".into()] };
        let q = Question { video: 0, family: "f".into(), prompt: vec![], options: vec![vec![], vec![]], answer: 1, text: Some(text) };
        let out = for_hf(&[q], Rendering::Ids, &parts, &bytes).unwrap();
        assert_eq!(out[0].prompt, bytes("Q: Which? A:", false).unwrap());
        assert_eq!(out[0].options, vec![bytes(" red</s>", false).unwrap(), bytes(" blue</s>", false).unwrap()]);
        assert_eq!((out[0].answer, out[0].target().len()), (1, " blue</s>".len()));
    }

    #[test]
    fn every_answer_token_has_a_distinct_word() {
        let mut words: Vec<&str> = (0..vocab::SIZE as i64).filter_map(synthetic_word).collect();
        assert_eq!(words.len(), 12);
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), 12);
        assert_eq!((synthetic_word(vocab::EOS), synthetic_word(vocab::COLORS[0])), (None, Some("red")));
        assert_eq!(synthetic_texts()[2].1, [" zero", " one", " two", " three"]);
    }
}
