//! Keys to intents. The help screen (`view`) lists the same keys.
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::Msg;

/// The intent of a key press, or None for keys that do nothing. While the
/// filter is being typed, printable keys go to it; Ctrl-C always quits.
/// Key releases are ignored; auto-repeat counts as presses.
pub fn msg(key: KeyEvent, editing_filter: bool) -> Option<Msg> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl_alt = key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c' | 'C')) {
        return Some(Msg::Quit);
    }
    if editing_filter {
        return match key.code {
            KeyCode::Char(c) if !ctrl_alt => Some(Msg::FilterInput(c)),
            KeyCode::Backspace => Some(Msg::FilterBackspace),
            KeyCode::Enter => Some(Msg::FilterDone),
            KeyCode::Esc => Some(Msg::Back),
            KeyCode::Up => Some(Msg::Up),
            KeyCode::Down => Some(Msg::Down),
            KeyCode::PageUp => Some(Msg::PageUp),
            KeyCode::PageDown => Some(Msg::PageDown),
            _ => None,
        };
    }
    let m = match key.code {
        KeyCode::Up => Msg::Up,
        KeyCode::Down => Msg::Down,
        KeyCode::Left => Msg::SortPrev,
        KeyCode::Right => Msg::SortNext,
        KeyCode::PageUp => Msg::PageUp,
        KeyCode::PageDown => Msg::PageDown,
        KeyCode::Home => Msg::Home,
        KeyCode::End => Msg::End,
        KeyCode::Enter => Msg::Open,
        KeyCode::Esc => Msg::Back,
        KeyCode::F(1) => Msg::Help,
        KeyCode::Char(_) if ctrl_alt => return None,
        KeyCode::Char(c) => match c {
            'q' => Msg::Quit,
            'p' | ' ' => Msg::TogglePause,
            'k' => Msg::Up,
            'j' => Msg::Down,
            'g' => Msg::Home,
            'G' => Msg::End,
            's' => Msg::SortNext,
            'S' => Msg::SortReverse,
            '/' => Msg::FilterStart,
            'r' => Msg::Reset,
            '+' | '=' => Msg::Faster,
            '-' => Msg::Slower,
            '?' => Msg::Help,
            'b' => Msg::ToggleBpfStats,
            '.' => Msg::Step,
            '>' => Msg::SpeedUp,
            '<' => Msg::SpeedDown,
            _ => return None,
        },
        _ => return None,
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyEventState;

    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ch(c: char) -> Option<Msg> {
        msg(press(KeyCode::Char(c)), false)
    }

    #[test]
    fn keys_map_to_intents() {
        let cases = [
            ('q', Msg::Quit),
            ('p', Msg::TogglePause),
            (' ', Msg::TogglePause),
            ('j', Msg::Down),
            ('k', Msg::Up),
            ('g', Msg::Home),
            ('G', Msg::End),
            ('s', Msg::SortNext),
            ('S', Msg::SortReverse),
            ('/', Msg::FilterStart),
            ('r', Msg::Reset),
            ('+', Msg::Faster),
            ('=', Msg::Faster),
            ('-', Msg::Slower),
            ('?', Msg::Help),
            ('b', Msg::ToggleBpfStats),
            ('.', Msg::Step),
            ('>', Msg::SpeedUp),
            ('<', Msg::SpeedDown),
        ];
        for (c, m) in cases {
            assert_eq!(ch(c), Some(m), "key {c:?}");
        }
        let codes = [
            (KeyCode::Up, Msg::Up),
            (KeyCode::Down, Msg::Down),
            (KeyCode::PageUp, Msg::PageUp),
            (KeyCode::PageDown, Msg::PageDown),
            (KeyCode::Home, Msg::Home),
            (KeyCode::End, Msg::End),
            (KeyCode::Enter, Msg::Open),
            (KeyCode::Esc, Msg::Back),
            (KeyCode::Left, Msg::SortPrev),
            (KeyCode::Right, Msg::SortNext),
        ];
        for (code, m) in codes {
            assert_eq!(msg(press(code), false), Some(m), "{code:?}");
        }
        assert_eq!(ch('x'), None);
        assert_eq!(msg(press(KeyCode::Tab), false), None);
        // Shifted letters arrive with SHIFT set.
        assert_eq!(msg(KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT), false), Some(Msg::SortReverse));
    }

    #[test]
    fn ctrl_c_quits_even_while_typing_and_other_ctrl_keys_do_nothing() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(msg(ctrl('c'), false), Some(Msg::Quit));
        assert_eq!(msg(ctrl('c'), true), Some(Msg::Quit));
        assert_eq!(msg(ctrl('s'), false), None);
        assert_eq!(msg(ctrl('q'), true), None);
    }

    #[test]
    fn typing_a_filter() {
        let typed = |code| msg(press(code), true);
        assert_eq!(typed(KeyCode::Char('q')), Some(Msg::FilterInput('q')));
        assert_eq!(typed(KeyCode::Char('/')), Some(Msg::FilterInput('/')));
        assert_eq!(typed(KeyCode::Char('1')), Some(Msg::FilterInput('1')));
        assert_eq!(typed(KeyCode::Backspace), Some(Msg::FilterBackspace));
        assert_eq!(typed(KeyCode::Enter), Some(Msg::FilterDone));
        assert_eq!(typed(KeyCode::Esc), Some(Msg::Back));
        assert_eq!(typed(KeyCode::Down), Some(Msg::Down), "the selection still moves");
        assert_eq!(typed(KeyCode::Home), None);
    }

    #[test]
    fn releases_are_ignored_and_repeats_count() {
        let with =
            |kind| KeyEvent::new_with_kind_and_state(KeyCode::Down, KeyModifiers::NONE, kind, KeyEventState::NONE);
        assert_eq!(msg(with(KeyEventKind::Release), false), None);
        assert_eq!(msg(with(KeyEventKind::Repeat), false), Some(Msg::Down));
        assert_eq!(msg(with(KeyEventKind::Press), false), Some(Msg::Down));
    }
}
