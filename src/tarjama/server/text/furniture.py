"""Page furniture in plain text: lines a saved news page carries beside the article (a "+ الخط -"
font-size widget, share buttons, a lone byline such as "المساهمون", a photo credit, "اقرأ أيضاً").

Such a paragraph is still translated and returned in its place, flagged BOILERPLATE, and never used in
the summary. Only short paragraphs are judged (a real paragraph that starts with "كتب" is not
furniture), and every pattern is anchored and linear.
"""

from __future__ import annotations

import re

from .rules import normalize

MAX_WORDS = 8
MAX_CHARACTERS = 80

_SOCIAL = (
    "فيسبوك|فيس بوك|تويتر|إكس|واتساب|واتس اب|تلغرام|تيليجرام|لينكدإن|لينكد إن|انستغرام|إنستغرام|يوتيوب"
    "|بريد|طباعة|نسخ الرابط|ماسنجر"
)
_AGENCIES = "رويترز|أ ف ب|ا ف ب|فرانس برس|الأناضول|أسوشيتد برس|وكالات|د ب أ|سانا|واس|وام|قنا|كونا|بترا|المصدر"
_PATTERNS = [
    # Font-size widgets: "+ الخط -", "حجم الخط", "A A A", "تكبير الخط تصغير الخط".
    r"[+\-–−]?\s{0,3}(?:حجم\s)?الخط\s{0,3}[+\-–−]?",
    r"(?:(?:تكبير|تصغير)\s(?:الخط|النص)\s?){1,2}",
    r"(?:[aA][+\-]?\s?){2,4}",
    # Share buttons and lists of networks.
    rf"(?:شارك|شاركها|شارك الخبر|مشاركة|انشر|تابعونا)(?:\s(?:على|عبر))?(?:\s(?:{_SOCIAL}))*\s?:?",
    rf"(?:(?:{_SOCIAL})[\s,،|]{{0,3}}){{2,}}",
    # Lone bylines: "المساهمون", "بقلم: فلان", "كتب - فلان".
    r"(?:المساهمون|المساهمين|بقلم|كتب|كتبت|إعداد|اعداد|تحرير|مراسلنا|المحرر|محرر)(?:\s?[:：\-–]\s?|\s)?[^.!?؟]{0,40}",
    # Photo credits.
    r"\(?(?:تصوير|الصورة|صورة|مصدر الصورة|حقوق الصورة|صور|الصور)\s?[:：\-–]?[^.!?؟]{0,50}\)?",
    rf"[(\[]?\s?(?:{_AGENCIES})\s?[)\]]?",
    # Navigation between stories.
    r"(?:اقرأ|إقرأ)\s(?:أيضا|أيضاً|ايضا|ايضاً|المزيد)\s?:?.{0,60}",
    r"(?:إعلان|اعلان|الأكثر قراءة|الأكثر مشاهدة|مواضيع ذات صلة|أخبار ذات صلة|شاهد أيضا|شاهد أيضاً)\s?:?",
    r"(?:آخر تحديث|تاريخ النشر|نشر في|نُشر في)\s?[:：]?.{0,40}",
]
_FURNITURE = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))


def is_furniture(paragraph: str) -> bool:
    """Whether a paragraph is page furniture rather than part of the article."""
    text = " ".join(normalize(paragraph, strip_diacritics=True).split())
    if not text or len(text) > MAX_CHARACTERS or len(text.split()) > MAX_WORDS:
        return False
    return _FURNITURE.fullmatch(text) is not None
