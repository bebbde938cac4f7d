"""Start the sdfl desktop app (same as ``sdfl gui``; pass its options, e.g. ``--source video.mp4``)."""
from app.main import main

if __name__ == "__main__":
    main()
