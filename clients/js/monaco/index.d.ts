// Reserved for the Monaco binding; it exports nothing yet.
export {};
