//! Reading what a person typed or picked in a form field.

use yew::NodeRef;

/// The value of the `<input>`, `<select>` or `<textarea>` behind `r`
/// (empty when it is not mounted).
pub fn value_of(r: &NodeRef) -> String {
    if let Some(i) = r.cast::<web_sys::HtmlInputElement>() {
        return i.value();
    }
    if let Some(s) = r.cast::<web_sys::HtmlSelectElement>() {
        return s.value();
    }
    r.cast::<web_sys::HtmlTextAreaElement>()
        .map(|t| t.value())
        .unwrap_or_default()
}
