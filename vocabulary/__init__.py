"""The shared vocabulary at the bottom of the product: the typed records that flow frames -> faces ->
observations -> rows (`records`) and the emotion classes (`emotions`). Every other package imports it; it
imports none of them."""
