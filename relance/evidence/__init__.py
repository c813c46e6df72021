"""Evidence pack per debtor: everything a collection agency or a court needs, in one ZIP."""
