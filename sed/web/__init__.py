"""The browser demo (Gradio). Optional: `pip install -e .[web]`; `import sed` does not import it."""
