"""Formal letters: the mise en demeure (French, English variant) rendered to PDF for registered mail."""
